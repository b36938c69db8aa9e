// Fused Behler-Parrinello symmetry functions: lammps_adv::bp_features and its gradient.
//
// One pass over the edges of each centre atom computes its G2 (radial) and G4 (angular)
// features; a second pass, given dE/dG, accumulates dE/d(edge vector); a third (forward
// mode, for force training) gives the change of the features along a perturbation of the
// edge vectors. For inference, lammps_adv::bp_energies does all of it per centre from one
// scan: features, the species' MLP (energy, dE/dG), gradient pass. Centres are spread
// over threads in small chunks (torch's OpenMP pool, torch.set_num_threads): a centre
// writes only its own feature row and the gradient rows of its own edges, so no locks.
//
// Definitions and feature layout are those of lammps_adv/models/bp.py (its pure-torch
// path is the reference implementation; the tests compare both to 1e-10 relative):
//   fc(r)        = 0.5 [cos(pi r / rc) + 1]
//   G2[a, r]     = sum_j exp(-eta_r r_ij^2) fc(r_ij)                   (s_j = a)
//   G4[p(a,b),m] = w_ab 2^(1-zeta_m) sum_{j<k} (1 + lambda_m cos)^zeta_m
//                  exp(-eta_m (r_ij^2 + r_ik^2 + r_jk^2)) fc(r_ij) fc(r_ik) fc(r_jk)
// with w_ab = pair_weight[a][b] (2 for a == b: ordered pairs) and r_jk < rc.
//
// Speed: the edges of a centre are copied into arrays ordered by neighbour species. A scan over
// the first edges j collects the partners k > j with r_jk < rc into sets, one per (species of
// j, species of k), holding per triplet what needs only the two edge vectors (cos theta, r_jk^2,
// s = r_ij^2 + r_ik^2 + r_jk^2, fc(r_ij) fc(r_ik)); a set is processed in long loops when full
// (256 triplets: its work arrays stay in L1) and at the end. Per triplet, one exp per ladder of
// etas (of s: no per-edge exponentials to gather; etas that are integer multiples of one base
// are powers of its exp, so the default six etas take two exps), the powers (1 + lambda cos)^zeta from one table
// of squarings per distinct lambda (factors folded into the weights, no copies for powers of
// two, other powers in one pass); the features summed with the functions of one eta together
// (X read once), and in the gradient pass the sums over the functions of two etas per pass
// held in registers. No square root per triplet: fc(r_jk) and fc'/(fc r) come from series in
// r_jk^2. With AVX-512 the scan compacts the partners of 8 candidates at once (vector
// compress); the gradient pass writes g_j = a_j v_j + b v_k, g_k = a_k v_k + b v_j (three
// numbers per triplet, not six), and in fused inference adds them to the gradient rows in
// candidate order (the partners of one first edge are contiguous edges: vector loads and
// stores, the compacted factors expanded by the scan's pass bits). The loops are written for SIMD (polynomial
// exp and cos accurate to a few ulp); CMakeLists.txt compiles them for AVX-512 or AVX2 + FMA
// when the building CPU has them, and the scalar compaction serves the others. For the default
// 22 angular functions, fused inference keeps every per-triplet term in registers instead of
// rows (section "default set": default_forward, default_backward, DefaultFactors).
//
// Inputs: vec [E,3] float64 edge vectors (neighbour - centre), edges sorted by centre with
// offsets [n_centres + 1]; nbr_species [E] int64. CPU only; the model uses its pure-torch
// path on other devices (CUDA), so a GPU run needs no separate build.
#include <torch/torch.h>
#include <torch/library.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <utility>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif


namespace {

using torch::Tensor;

// One vector register of doubles as a value (GCC vector extension: 8 with AVX-512, 4 with
// AVX, else 2), loaded unaligned; the same code bodies serve double for tails. (dot_eta's
// C sums as an omp simd array reduction instead: 15 % slower inference with GCC 12.)
#if defined(__AVX512F__)
constexpr int64_t kLanes = 8;
#elif defined(__AVX__)
constexpr int64_t kLanes = 4;
#else
constexpr int64_t kLanes = 2;
#endif
typedef double vnd __attribute__((vector_size(kLanes * sizeof(double))));
template <class V> inline V load(const double* p) {
  if constexpr (std::is_same_v<V, double>) return *p;
  else { V v; std::memcpy(&v, p, sizeof(V)); return v; }
}
template <class V> inline void store(double* p, const V& v) { std::memcpy(p, &v, sizeof(V)); }

// std::vector storage aligned to 64 bytes (a cache line, one AVX-512 vector)
template <class T> struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U> Aligned64(const Aligned64<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U> bool operator==(const Aligned64<U>&) const { return true; }
  template <class U> bool operator!=(const Aligned64<U>&) const { return false; }
};
using dvec = std::vector<double, Aligned64<double>>;

// ----------------------------------------------------------------------------- parameters
struct Params {
  double rc = 0.0;
  int64_t S = 0, n_pairs = 0, R = 0, A = 0, n_features = 0;
  std::vector<double> radial_etas;
  std::vector<int64_t> pair_index;   // [S*S]
  std::vector<double> pair_weight;   // [S*S]
  // distinct angular eta values and (lambda, zeta) pairs, and which one each function uses
  std::vector<double> eta_u, lam_u, zeta_u;
  std::vector<int> zeta_int_u;       // zeta as an integer power, -1 when not integral
  std::vector<int> eta_of, lz_of;
  // the powers (1 + lambda cos)^(2^q) are shared by every (lambda, zeta) of one lambda:
  // distinct lambdas, which one each (lambda, zeta) uses, and the highest q each needs
  std::vector<double> lam_g;
  std::vector<int> g_of, q_max;
  // A_l = a_fac[l] (1 + lambda cos)^zeta, dA_l/dcos = d_fac[l] (1 + lambda cos)^(zeta - 1)
  std::vector<double> a_fac, d_fac;
  // exp(-eta_u s) of the distinct etas as integer powers of exp(-base s), one exp per ladder
  // (the default etas are 1, 30, 80, 150, 250, 450 x 1e-4 bohr^-2: two ladders, bases 1e-4
  // and 1e-3 bohr^-2, instead of six exps); eta_u[u] = power[u] * base of its ladder
  struct Ladder { double base; std::vector<int> us, powers; };
  std::vector<Ladder> ladders;
  // The default 22 angular functions (bp.py's): inference runs them in registers
  // (default_forward, default_backward). Slots u of the etas: e = exp(-base s) and (e^10)^{3,
  // 8, 15, 25, 45}; slots l of (lambda, zeta): (-1, 1), (1, 1), (-1, 2), (1, 2), (1, 4), (1,
  // 16); fn: the function of each pattern slot (kDefaultU/L). For a cutoff with base 3 rc^2 <=
  // 0.2 (the default etas: rc <= 13.6 A), so that exp(-base s) is a short series.
  struct DefaultSet {
    bool on = false;
    double base = 0.0, eta[6] = {}, a_fac[6] = {}, d_fac[6] = {};
    int fn[22] = {};
  } fast;
};

// The (eta slot, (lambda, zeta) slot) of each default function, grouped by eta.
constexpr int kDefaultU[22] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5};
constexpr int kDefaultL[22] = {0, 1, 2, 3, 0, 1, 2, 3, 1, 3, 1, 3, 4, 5, 1, 3, 4, 5, 1, 3, 4, 5};
// the ladder power of each eta slot u: 1 of the lone ladder's base, 3..45 of the other's (10x)
constexpr int kDefaultPowers[6] = {1, 3, 8, 15, 25, 45};
constexpr double kDefaultLambda[6] = {-1, 1, -1, 1, 1, 1}, kDefaultZeta[6] = {1, 1, 2, 2, 4, 16};

// The highest bit of an integer power (0 for 1), i.e. the squarings it needs.
int top_bit(int k) {
  int q = 0;
  while ((k >> (q + 1)) > 0) ++q;
  return q;
}

// Ladders for the distinct etas: greedily the base eta_u / d (d = 1..16) that makes the most
// remaining etas integer multiples of at most kMaxPower (to 1e-12), the largest base on ties.
constexpr int kMaxPower = 64;
std::vector<Params::Ladder> eta_ladders(const std::vector<double>& eta) {
  std::vector<Params::Ladder> out;
  std::vector<bool> done(eta.size(), false);
  auto multiple = [](double e, double base) {
    const double k = std::round(e / base);
    return k >= 1 && k <= kMaxPower && std::abs(e - k * base) <= 1e-12 * e ? int(k) : 0;
  };
  for (;;) {
    Params::Ladder best{0.0, {}, {}};
    for (size_t u = 0; u < eta.size(); ++u) {
      if (done[u]) continue;
      for (int d = 1; d <= 16; ++d) {
        Params::Ladder cand{eta[u] / d, {}, {}};
        for (size_t v = 0; v < eta.size(); ++v) {
          const int k = done[v] ? 0 : multiple(eta[v], cand.base);
          if (k > 0) { cand.us.push_back(int(v)); cand.powers.push_back(k); }
        }
        if (cand.us.size() > best.us.size() ||
            (cand.us.size() == best.us.size() && cand.base > best.base))
          best = cand;
      }
    }
    if (best.us.empty()) return out;
    for (int u : best.us) done[u] = true;
    out.push_back(best);
  }
}

// The default function set's slots if the parameters are the default 22 functions (any eta
// scale that keeps their ladders), else off.
Params::DefaultSet default_set(const Params& p) {
  Params::DefaultSet d;
  if (p.A != 22 || p.eta_u.size() != 6 || p.lam_u.size() != 6 || p.ladders.size() != 2 ||
      p.ladders[0].us.size() * p.ladders[1].us.size() != 5)
    return d;
  int u_slot[6], l_slot[6];
  for (const Params::Ladder& lad : p.ladders)
    for (size_t m = 0; m < lad.us.size(); ++m) {
      const bool alone = lad.us.size() == 1;
      int slot = -1;
      for (int v = alone ? 0 : 1; v < (alone ? 1 : 6); ++v)
        if (kDefaultPowers[v] == lad.powers[m]) slot = v;
      if (slot < 0) return d;
      u_slot[lad.us[m]] = slot;
      d.eta[slot] = p.eta_u[lad.us[m]];
    }
  const Params::Ladder& a = p.ladders[p.ladders[0].us.size() == 1 ? 0 : 1];
  const Params::Ladder& b = p.ladders[p.ladders[0].us.size() == 1 ? 1 : 0];
  d.base = a.base;
  if (std::abs(b.base - 10.0 * a.base) > 1e-12 * b.base || a.base * 3.0 * p.rc * p.rc > 0.2)
    return d;
  for (size_t l = 0; l < 6; ++l) {
    int slot = -1;
    for (int v = 0; v < 6; ++v)
      if (kDefaultLambda[v] == p.lam_u[l] && kDefaultZeta[v] == p.zeta_u[l]) slot = v;
    if (slot < 0) return d;
    l_slot[l] = slot;
    d.a_fac[slot] = p.a_fac[l];
    d.d_fac[slot] = p.d_fac[l];
  }
  bool taken[22] = {};
  for (int k = 0; k < 22; ++k) {
    int n = 0;
    while (n < 22 && (taken[n] || kDefaultU[n] != u_slot[p.eta_of[k]] ||
                      kDefaultL[n] != l_slot[p.lz_of[k]])) ++n;
    if (n == 22) return d;
    taken[n] = true;
    d.fn[n] = k;
  }
  d.on = true;
  return d;
}

std::vector<double> as_doubles(const Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

Params make_params(const Tensor& radial_etas, const Tensor& angular_etas, const Tensor& lambdas,
                   const Tensor& zetas, const Tensor& pair_index, const Tensor& pair_weight,
                   double cutoff) {
  Params p;
  p.rc = cutoff;
  p.radial_etas = as_doubles(radial_etas);
  auto eta = as_doubles(angular_etas), lam = as_doubles(lambdas), zeta = as_doubles(zetas);
  TORCH_CHECK(eta.size() == lam.size() && eta.size() == zeta.size(),
              "bp_features: angular_etas, lambdas and zetas differ in length");
  TORCH_CHECK(eta.size() <= 64, "bp_features: at most 64 angular functions");
  TORCH_CHECK(pair_index.dim() == 2 && pair_index.size(0) == pair_index.size(1) &&
              pair_weight.sizes() == pair_index.sizes(),
              "bp_features: pair_index and pair_weight must be [S, S]");
  p.S = pair_index.size(0);
  auto pi = pair_index.detach().to(torch::kCPU, torch::kInt64).contiguous();
  p.pair_index.assign(pi.data_ptr<int64_t>(), pi.data_ptr<int64_t>() + pi.numel());
  p.pair_weight = as_doubles(pair_weight);
  p.n_pairs = p.S * (p.S + 1) / 2;
  p.R = static_cast<int64_t>(p.radial_etas.size());
  p.A = static_cast<int64_t>(eta.size());
  p.n_features = p.S * p.R + p.n_pairs * p.A;
  for (size_t m = 0; m < eta.size(); ++m) {
    int e = -1, l = -1;
    for (size_t u = 0; u < p.eta_u.size(); ++u) if (p.eta_u[u] == eta[m]) e = int(u);
    if (e < 0) { e = int(p.eta_u.size()); p.eta_u.push_back(eta[m]); }
    for (size_t u = 0; u < p.lam_u.size(); ++u)
      if (p.lam_u[u] == lam[m] && p.zeta_u[u] == zeta[m]) l = int(u);
    if (l < 0) {
      l = int(p.lam_u.size());
      p.lam_u.push_back(lam[m]);
      p.zeta_u.push_back(zeta[m]);
      p.a_fac.push_back(std::pow(2.0, 1.0 - zeta[m]));
      double zr = std::round(zeta[m]);
      p.zeta_int_u.push_back(zr == zeta[m] && zr >= 1.0 && zr <= 64.0 ? int(zr) : -1);
    }
    p.eta_of.push_back(e);
    p.lz_of.push_back(l);
  }
  for (size_t l = 0; l < p.lam_u.size(); ++l) {
    int g = -1;
    for (size_t h = 0; h < p.lam_g.size(); ++h) if (p.lam_g[h] == p.lam_u[l]) g = int(h);
    if (g < 0) { g = int(p.lam_g.size()); p.lam_g.push_back(p.lam_u[l]); p.q_max.push_back(0); }
    p.g_of.push_back(g);
    if (p.zeta_int_u[l] > 0) p.q_max[g] = std::max(p.q_max[g], top_bit(p.zeta_int_u[l]));
    p.d_fac.push_back(p.a_fac[l] * p.zeta_u[l] * p.lam_u[l]);
  }
  p.ladders = eta_ladders(p.eta_u);
  p.fast = default_set(p);
  return p;
}

// ----------------------------------------------------------------------------- math
// 1/k! for k = 0..13 (k! exact in doubles)
constexpr double inverse_factorial(int k) {
  double f = 1.0;
  for (int i = 2; i <= k; ++i) f *= i;
  return 1.0 / f;
}

// A double or a vnd holding v in every lane (the series below serve both).
template <class T> inline T splat(double v) {
  if constexpr (std::is_same_v<T, double>) return v;
  else return T{} + v;
}

// exp(x) for x in [-708, 708] (normal doubles): x = n ln2 + r, |r| <= ln2/2, e^r by its Taylor
// series to r^Degree, 2^n from the exponent bits.
template <int Degree>
static inline double exp_series(double x) {
  const double shift = 6755399441055744.0;               // 1.5 * 2^52: rounds to integer
  const double t = x * 1.4426950408889634 + shift;
  const double n = t - shift;
  const double r = (x - n * 0.6931471803691238) - n * 1.9082149292705877e-10;
  constexpr double top = inverse_factorial(Degree);
  double q = top;
#pragma GCC unroll 16
  for (int k = Degree - 1; k >= 0; --k) q = q * r + inverse_factorial(k);
  uint64_t bits;
  std::memcpy(&bits, &t, sizeof bits);
  bits = (bits + 1023u) << 52;                            // (n + 1023) << 52 = 2^n
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return q * scale;
}

// exp(x), error < 2e-16 relative, clamped to [-708, 708]
static inline double exp_poly(double x) {
  return exp_series<13>(std::min(std::max(x, -708.0), 708.0));
}

// exp(x) for -0.2 <= x <= 0 by its Taylor series to x^10: error < 5e-16 relative
template <class T>
static inline T exp_small(T x) {
  T q = splat<T>(inverse_factorial(10));
#pragma GCC unroll 10
  for (int k = 9; k >= 0; --k) q = q * x + inverse_factorial(k);
  return q;
}

// exp(x) for x <= 0 (the triplet terms' exp(-eta s)): error < 1e-14 relative (the kernel is
// held to 1e-10) with two terms fewer, and no upper clamp
static inline double exp_neg(double x) {
  return exp_series<11>(std::max(x, -708.0));
}

// cos(z) and sin(z) / z for z in [0, pi/2] by Taylor series in z2 = z^2 (error < 1e-16):
// no square root where only r^2 is known
template <class T>
static inline T cos_sq(T z2) {
  T q = splat<T>(1.0 / 2432902008176640000.0);           // 1/20!
  q = q * z2 - 1.0 / 6402373705728000.0;                  // 1/18!
  q = q * z2 + 1.0 / 20922789888000.0;
  q = q * z2 - 1.0 / 87178291200.0;
  q = q * z2 + 1.0 / 479001600.0;
  q = q * z2 - 1.0 / 3628800.0;
  q = q * z2 + 1.0 / 40320.0;
  q = q * z2 - 1.0 / 720.0;
  q = q * z2 + 1.0 / 24.0;
  q = q * z2 - 0.5;
  return q * z2 + 1.0;
}

template <class T>
static inline T sinc_sq(T z2) {
  T q = splat<T>(-1.0 / 51090942171709440000.0);         // -1/21!
  q = q * z2 + 1.0 / 121645100408832000.0;
  q = q * z2 - 1.0 / 355687428096000.0;
  q = q * z2 + 1.0 / 1307674368000.0;
  q = q * z2 - 1.0 / 6227020800.0;
  q = q * z2 + 1.0 / 39916800.0;
  q = q * z2 - 1.0 / 362880.0;
  q = q * z2 + 1.0 / 5040.0;
  q = q * z2 - 1.0 / 120.0;
  q = q * z2 + 1.0 / 6.0;
  return 1.0 - z2 * q;
}

// fc(r) = 0.5 (cos(pi r / rc) + 1) = cos^2(h), h = pi r / (2 rc) in [0, pi/2) inside the
// cutoff; fc'(r) = -(pi / rc) sin(h) cos(h)
static inline double fc_of(double r, double half_k) {
  const double c = cos_sq(half_k * half_k * r * r);
  return c * c;
}

static inline double dfc_of(double r, double half_k) {
  const double h = half_k * r, h2 = h * h;
  return -2.0 * half_k * h * sinc_sq(h2) * cos_sq(h2);
}

// ----------------------------------------------------------------------------- one centre
// The triplets (j, k > j, r_jk < rc) of one centre whose first edges j have one species and
// whose partners k have one species: one output row, one pair weight. Filled first edge by
// first edge with what needs only the two edge vectors, then processed in long loops.
struct Triplets {
  int64_t L = 0, cap = 0;
  std::vector<int64_t> j, k;           // edges, in the block's order
  dvec r3, cs, s, w0;                  // r_jk^2, cos theta, r_ij^2 + r_ik^2 + r_jk^2,
                                       // fc(r_ij) fc(r_ik)
  // Kept whole (fused inference): each first edge's candidate lanes k = b0 .. b0 + m - 1 (with
  // AVX-512 from the aligned block that holds its first candidate) with the bits of those
  // that passed (one byte per 8), and per triplet the chain-rule factors
  // a_j, a_k, b; the gradient rows are then added in candidate order (scatter_runs).
  struct Run { int64_t j, b0, m, t0; };
  std::vector<Run> runs;
  std::vector<uint8_t> bits;
  dvec aj, ak, bb;
  // the same for the default set (default_gradient): d/dlog(w), 2 d/ds + q3, q3 = 2 d/ds +
  // d/dlog(w) fc'(r_jk) / (fc(r_jk) r_jk), d/dcos, d/dcos cos
  dvec xw, t2, q3, dc, dcc;
  // kPad slots beyond cap: the vector compaction stores whole vectors
  static constexpr int64_t kPad = 8;
  void resize(int64_t n) {
    cap = n;
    for (auto* v : {&j, &k}) v->resize(n + kPad);
    for (auto* v : {&r3, &cs, &s, &w0, &aj, &ak, &bb, &xw, &t2, &q3, &dc, &dcc}) v->resize(n + kPad);
  }
  int64_t nruns = 0, nbits = 0;
  void clear() { L = 0; nruns = 0; nbits = 0; }
};

// count triplets of a set from `begin`: what one processing step works on
struct Span {
  int64_t L;
  const int64_t *j, *k;
  const double *r3, *cs, *s, *w0;
};

Span span_of(const Triplets& T, int64_t begin, int64_t count) {
  return {count, T.j.data() + begin, T.k.data() + begin, T.r3.data() + begin,
          T.cs.data() + begin, T.s.data() + begin, T.w0.data() + begin};
}

// The per-triplet terms of a span: X_u = fc(r_ij) fc(r_ik) fc(r_jk) exp(-eta_u s) ([nu] rows
// `stride` apart), A_l / a_fac[l] and dA_l/dcos / d_fac[l] per distinct (lambda, zeta) as
// arrays, fc(r_jk), and with grad fc'(r_jk) / (fc(r_jk) r_jk). Point into the work arrays (just
// computed) or into a tape (computed before).
struct Terms {
  const double* xu = nullptr;
  int64_t stride = 0;
  std::vector<const double*> a, d;
  const double* lf3 = nullptr;
};

// Where the terms of a span lie in one block of doubles, rows of `stride`: X_u [nu], the
// squarings (1 + lambda cos)^(2^q) per distinct lambda [ng][q1], A and dA/dcos rows for the
// powers that are no single squaring [nl] each, fc(r_jk), fc'(r_jk) / (fc(r_jk) r_jk), w.
struct TermsLayout {
  int64_t nu = 0, nl = 0, ng = 0, q1 = 1;
  explicit TermsLayout(const Params& p)
      : nu(int64_t(p.eta_u.size())), nl(int64_t(p.lam_u.size())), ng(int64_t(p.lam_g.size())) {
    for (int q : p.q_max) q1 = std::max<int64_t>(q1, q + 1);
  }
  int64_t rows() const { return nu + ng * q1 + 2 * nl + 3; }
  double* table(double* b, int64_t st, int64_t g) const { return b + (nu + g * q1) * st; }
  double* ang(double* b, int64_t st, int64_t l) const { return b + (nu + ng * q1 + l) * st; }
  double* dang(double* b, int64_t st, int64_t l) const { return b + (nu + ng * q1 + nl + l) * st; }
  double* extra(double* b, int64_t st, int64_t i) const {   // 0 fc3, 1 lf3, 2 w
    return b + (nu + ng * q1 + 2 * nl + i) * st;
  }
};

// Work arrays of the span being processed, [cap] or a terms block of rows [cap].
struct Work {
  int64_t cap = 0;
  std::vector<double> block, dw, ds, dcos, ones, aj, ak, bb;   // bb: b of each triplet
  Terms terms;

  void resize(const Params& p, int64_t n) {
    cap = n;
    for (auto* v : {&dw, &ds, &dcos, &aj, &ak, &bb}) v->resize(n);
    ones.assign(n, 1.0);
    block.resize(TermsLayout(p).rows() * n);
  }
};

// The terms of the spans of one centre, kept for its gradient pass (fused inference): each
// span's block of rows, written in place by triplet_terms (the buffer only grows).
struct Tape {
  dvec data;
  std::vector<std::pair<int64_t, int64_t>> spans;   // offset, length
  int64_t used = 0;
  Terms view;

  void clear() { spans.clear(); used = 0; }

  // room for the terms of a span of L triplets
  double* next(const TermsLayout& lay, int64_t L) {
    const int64_t need = lay.rows() * L;
    if (int64_t(data.size()) < used + need) data.resize(std::max<int64_t>(2 * data.size(), used + need));
    spans.emplace_back(used, L);
    used += need;
    return data.data() + spans.back().first;
  }
};

// The edges of one centre in arrays ordered by neighbour species, its triplet sets and the
// work arrays. One per thread, reused from centre to centre.
struct Block {
  static constexpr int64_t kSpan = 256;   // triplets per processing step: work arrays in L1
  int64_t n = 0;
  std::vector<int64_t> edge, sp, start;                // original edge, species, [S+1] ranges
  // kLanes zeros beyond n: the scan reads whole aligned vectors
  dvec x, y, z, r2, inv_r, fc, dfc, lfc;               // lfc = fc'(r) / (fc(r) r)
  dvec gx, gy, gz;                                     // dE/d(edge vector), this block
  dvec rexp;                                           // exp(-eta_k r^2), [R][n] (radial_exps)
  std::vector<int64_t> fill;                           // species slots while loading
  std::vector<double> ux, uy, uz, vu;                  // jvp: edge perturbation u, v . u
  std::vector<Triplets> sets;                          // [S * S]: (species of j, of k)
  Work work;
  Tape tape;

  // The perturbation of this block's edges (jvp), in the block's order.
  void load_u(const double* u) {
    for (auto* vv : {&ux, &uy, &uz, &vu}) vv->resize(n);
    for (int64_t i = 0; i < n; ++i) {
      const double* ue = u + 3 * edge[i];
      ux[i] = ue[0]; uy[i] = ue[1]; uz[i] = ue[2];
      vu[i] = x[i] * ux[i] + y[i] * uy[i] + z[i] * uz[i];
    }
  }

  void load(const Params& p, const double* v, const int64_t* species, int64_t e0, int64_t count) {
    n = count;
    start.assign(p.S + 1, 0);
    for (int64_t a = 0; a < n; ++a) start[species[e0 + a] + 1]++;
    for (int64_t s = 0; s < p.S; ++s) start[s + 1] += start[s];
    fill.assign(start.begin(), start.end() - 1);
    for (auto* vv : {&x, &y, &z, &r2, &inv_r, &fc, &dfc, &lfc, &gx, &gy, &gz})
      vv->assign(n + kLanes, 0.0);
    edge.resize(n);
    sp.resize(n);
    for (int64_t a = 0; a < n; ++a) {
      const int64_t s = species[e0 + a], i = fill[s]++;
      edge[i] = e0 + a;
      sp[i] = s;
      x[i] = v[3 * (e0 + a)];
      y[i] = v[3 * (e0 + a) + 1];
      z[i] = v[3 * (e0 + a) + 2];
    }
    const double half_k = 0.5 * M_PI / p.rc;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      r2[i] = x[i] * x[i] + y[i] * y[i] + z[i] * z[i];
      const double r = std::sqrt(r2[i]);
      inv_r[i] = 1.0 / r;
      fc[i] = fc_of(r, half_k);
      dfc[i] = dfc_of(r, half_k);
      lfc[i] = dfc[i] / fc[i] * inv_r[i];
    }
    const int64_t want = std::max(kSpan, n);
    if (want > work.cap || sets.size() != size_t(p.S * p.S)) {
      sets.resize(p.S * p.S);
      for (auto& t : sets) t.resize(std::max(want, t.cap));
      work.resize(p, std::max(want, work.cap));
    }
    for (auto& t : sets) t.clear();
  }

  // Every triplet of the centre, handed to process(sa, sb, set) one set at a time: when a set
  // could not take the next first edge's partners, and at the end.
  template <class Process>
  void each_triplet_set(const Params& p, Process&& process) {
    scan(p, false, true, [&](int64_t sa, int64_t sb, Triplets& T) {
      process(sa, sb, T);
      T.L = 0;
    });
    for (int64_t sa = 0; sa < p.S; ++sa)
      for (int64_t sb = 0; sb < p.S; ++sb) {
        Triplets& T = sets[sa * p.S + sb];
        if (T.L > 0) process(sa, sb, T);
        T.L = 0;
      }
  }

  // Every triplet of the centre kept in the sets (they grow as needed).
  // Without indices the triplets' edges j, k are not stored (the runs and pass bits give them).
  void collect_triplets(const Params& p, bool indices = true) {
    scan(p, true, indices, [](int64_t, int64_t, Triplets& T) { T.resize(2 * T.cap); });
  }

  // The scan over the first edges; full(sa, sb, set) when a set cannot take the next first
  // edge's partners (it must empty or grow the set): beyond the work arrays' length, or with
  // keep beyond the set's own capacity.
  template <class Full>
  void scan(const Params& p, bool keep, bool indices, Full&& full) {
    const double rc2 = p.rc * p.rc;
#if defined(__AVX512F__)
    const bool keep_bits = keep;   // (the vector loop's pass mask is called keep)
#endif
    for (int64_t a = 0; a + 1 < n; ++a) {
      const int64_t sa = sp[a];
      const double xa = x[a], ya = y[a], za = z[a], ia = inv_r[a], r2a = r2[a], fa = fc[a];
      for (int64_t sb = sa; sb < p.S; ++sb) {      // partners k > j: species >= sa
        const int64_t b0 = std::max(a + 1, start[sb]), m = start[sb + 1] - b0;
        if (m <= 0) continue;
        Triplets& T = sets[sa * p.S + sb];
        while (T.L + m > (keep ? T.cap : work.cap)) full(sa, sb, T);
        int64_t L = T.L;
#if defined(__AVX512F__)
        // compaction by vector compress, 8 candidates at once in blocks aligned to 8 edges
        // (aligned loads: the edge arrays are 64-byte aligned and padded), the lanes outside
        // [b0, end) masked
        const int64_t end = start[sb + 1], a0 = b0 & ~int64_t(7), lanes = end - a0;
        if (keep) {                                // the run, for scatter_runs
          if (T.nruns == int64_t(T.runs.size())) T.runs.resize(2 * T.nruns + 64);
          if (T.nbits + (lanes + 7) / 8 > int64_t(T.bits.size())) T.bits.resize(2 * T.bits.size() + lanes + 64);
          T.runs[T.nruns++] = {a, a0, lanes, L};
        }
        {
          const __m512d vxa = _mm512_set1_pd(xa), vya = _mm512_set1_pd(ya), vza = _mm512_set1_pd(za),
                        via = _mm512_set1_pd(ia), vr2a = _mm512_set1_pd(r2a), vfa = _mm512_set1_pd(fa),
                        vrc2 = _mm512_set1_pd(rc2), lo = _mm512_set1_pd(-1.0), hi = _mm512_set1_pd(1.0);
          __m512i kv = _mm512_add_epi64(_mm512_set1_epi64(a0), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
          const __m512i eight = _mm512_set1_epi64(8);
          for (int64_t t = 0; t < lanes; t += 8) {
            __mmask8 valid = t == 0 ? __mmask8(0xFF << (b0 - a0)) : __mmask8(0xFF);
            if (lanes - t < 8) valid &= __mmask8((1u << (lanes - t)) - 1);
            const int64_t e = a0 + t;
            const __m512d bx = _mm512_load_pd(x.data() + e), by = _mm512_load_pd(y.data() + e),
                          bz = _mm512_load_pd(z.data() + e);
            const __m512d dx = _mm512_sub_pd(bx, vxa), dy = _mm512_sub_pd(by, vya),
                          dz = _mm512_sub_pd(bz, vza);
            const __m512d d = _mm512_fmadd_pd(dz, dz, _mm512_fmadd_pd(dy, dy, _mm512_mul_pd(dx, dx)));
            const __m512d dotv = _mm512_fmadd_pd(vza, bz, _mm512_fmadd_pd(vya, by, _mm512_mul_pd(vxa, bx)));
            const __mmask8 keep = _mm512_mask_cmp_pd_mask(valid, d, vrc2, _CMP_LT_OQ);
            const __m512d cv = _mm512_mul_pd(_mm512_mul_pd(dotv, via), _mm512_load_pd(inv_r.data() + e));
            // masked forms with all lanes set: the plain min/max make GCC 12 warn about its own
            // undefined source vector
            const __m512d cl = _mm512_mask_min_pd(cv, 0xFF, _mm512_mask_max_pd(cv, 0xFF, cv, lo), hi);
            const __m512d sv = _mm512_add_pd(_mm512_add_pd(vr2a, _mm512_load_pd(r2.data() + e)), d);
            const __m512d wv = _mm512_mul_pd(vfa, _mm512_load_pd(fc.data() + e));
            if (indices) _mm512_storeu_si512(T.k.data() + L, _mm512_maskz_compress_epi64(keep, kv));
            _mm512_storeu_pd(T.r3.data() + L, _mm512_maskz_compress_pd(keep, d));
            _mm512_storeu_pd(T.cs.data() + L, _mm512_maskz_compress_pd(keep, cl));
            _mm512_storeu_pd(T.s.data() + L, _mm512_maskz_compress_pd(keep, sv));
            _mm512_storeu_pd(T.w0.data() + L, _mm512_maskz_compress_pd(keep, wv));
            L += __builtin_popcount(unsigned(keep));
            if (keep_bits) T.bits[T.nbits++] = uint8_t(keep);
            kv = _mm512_add_epi64(kv, eight);
          }
        }
#else
        const double *__restrict xb = x.data() + b0, *__restrict yb = y.data() + b0,
                     *__restrict zb = z.data() + b0;
        for (int64_t t = 0; t < m; ++t) {          // branch-free compaction
          const int64_t b = b0 + t;
          const double dx = xb[t] - xa, dy = yb[t] - ya, dz = zb[t] - za;
          const double dd = dx * dx + dy * dy + dz * dz;
          const double cv = (xa * xb[t] + ya * yb[t] + za * zb[t]) * ia * inv_r[b];
          T.k[L] = b;
          T.r3[L] = dd;
          T.cs[L] = cv < -1.0 ? -1.0 : (cv > 1.0 ? 1.0 : cv);
          T.s[L] = r2a + r2[b] + dd;
          T.w0[L] = fa * fc[b];
          L += dd < rc2;
        }
#endif
        if (indices) std::fill(T.j.begin() + T.L, T.j.begin() + L, a);
        T.L = L;
      }
    }
  }
};

// The row holding base^k (k >= 0) given the squarings base^(2^q) (stride apart): ones for
// k = 0, the squaring itself when k is a power of two, else `product` (power_product).
const double* power_row(int k, const double* table, int64_t stride, const double* ones,
                        const double* product) {
  if (k == 0) return ones;
  int q = 0;
  while (!((k >> q) & 1)) ++q;
  return (k >> (q + 1)) == 0 ? table + q * stride : product;
}

// out = the product of N rows, in one pass
template <int N>
void product_rows(const double* const* rows, double* __restrict out, int64_t L) {
  const double* r[N];
  for (int f = 0; f < N; ++f) r[f] = rows[f];
#pragma omp simd
  for (int64_t i = 0; i < L; ++i) {
    double v = r[0][i];
    for (int f = 1; f < N; ++f) v *= r[f][i];
    out[i] = v;
  }
}
using ProductRows = void (*)(const double* const*, double*, int64_t);
constexpr ProductRows kProductRows[8] = {nullptr, product_rows<1>, product_rows<2>, product_rows<3>,
                                         product_rows<4>, product_rows<5>, product_rows<6>,
                                         product_rows<7>};

// out = base^k as the product of its squarings (k neither 0 nor a power of two, k < 128)
void power_product(int k, const double* table, int64_t stride, double* __restrict out, int64_t L) {
  const double* rows[8];
  int n = 0;
  for (int q = 0; (k >> q) > 0; ++q)
    if ((k >> q) & 1) rows[n++] = table + q * stride;
  kProductRows[n](rows, out, L);
}

// The Terms of a span whose block (rows of `stride`) holds them: which row each A_l and
// dA_l/dcos is (a function of the parameters alone).
void terms_view(const Params& p, const TermsLayout& lay, double* b, int64_t stride,
                const double* ones, bool grad, Terms& t) {
  t.xu = b;
  t.stride = stride;
  t.a.resize(lay.nl);
  t.d.resize(lay.nl);
  for (int64_t l = 0; l < lay.nl; ++l) {
    const double* table = lay.table(b, stride, p.g_of[l]);
    const int k = p.zeta_int_u[l];
    t.a[l] = k > 0 ? power_row(k, table, stride, ones, lay.ang(b, stride, l)) : lay.ang(b, stride, l);
    t.d[l] = k > 0 ? power_row(k - 1, table, stride, ones, lay.dang(b, stride, l))
                   : lay.dang(b, stride, l);
  }
  t.lf3 = grad ? lay.extra(b, stride, 1) : nullptr;
}

// x = w e^K for K = 1..kMaxPower, unrolled at compile time (binary powering), one row pass
template <int K>
inline double int_power(double e) {
  if constexpr (K == 1) return e;
  else if constexpr (K % 2 == 0) { const double h = int_power<K / 2>(e); return h * h; }
  else return e * int_power<K - 1>(e);
}
template <int K>
void power_row_k(const double* __restrict e, const double* __restrict w, double* __restrict x,
                 int64_t L) {
#pragma omp simd
  for (int64_t i = 0; i < L; ++i) x[i] = w[i] * int_power<K>(e[i]);
}
using PowerRow = void (*)(const double*, const double*, double*, int64_t);
template <int... K>
constexpr std::array<PowerRow, sizeof...(K) + 1> power_rows(std::integer_sequence<int, K...>) {
  return {nullptr, &power_row_k<K + 1>...};
}
constexpr auto kPowerRows = power_rows(std::make_integer_sequence<int, kMaxPower>{});

// The terms of a span (struct Terms) computed into block b (rows of `stride` >= sp.L): one exp
// per distinct eta of s; integer zetas from one table of squarings (1 + lambda cos)^(2^q) per
// distinct lambda. With grad also fc'(r_jk) / (fc(r_jk) r_jk).
void triplet_terms(const Params& p, const TermsLayout& lay, const Span& sp, double* b,
                   int64_t stride, const double* ones, bool grad, Terms& t) {
  const int64_t L = sp.L;
  const double half_k = 0.5 * M_PI / p.rc;
  double* __restrict w = lay.extra(b, stride, 2);
  const double *__restrict r3 = sp.r3, *__restrict w0 = sp.w0, *__restrict sv = sp.s,
               *__restrict cs = sp.cs;
  // fc(r_jk) = cos^2(h), h = half_k r_jk < pi/2, and with grad fc'(r) / (fc(r) r) =
  // -2 half_k^2 sinc(h) / cos(h): series in r_jk^2, no square root
  const double k2 = half_k * half_k;
  if (grad) {
    double* __restrict lf = lay.extra(b, stride, 1);
#pragma omp simd
    for (int64_t i = 0; i < L; ++i) {
      const double z2 = k2 * r3[i], c = cos_sq(z2), f = c * c;
      w[i] = w0[i] * f;
      lf[i] = c > 0.0 ? -2.0 * k2 * sinc_sq(z2) / c : 0.0;
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < L; ++i) {
      const double c = cos_sq(k2 * r3[i]), f = c * c;
      w[i] = w0[i] * f;
    }
  }
  // X_u = w exp(-eta_u s): per ladder one exp e = exp(-base s) into a scratch row (the first
  // lambda's table, filled only below), then each X row as w e^k, the power unrolled
  double* __restrict e = lay.table(b, stride, 0);
  for (const Params::Ladder& lad : p.ladders) {
    const double base = lad.base;
#pragma omp simd
    for (int64_t i = 0; i < L; ++i) e[i] = exp_neg(-base * sv[i]);
    for (size_t m = 0; m < lad.us.size(); ++m)
      kPowerRows[lad.powers[m]](e, w, b + lad.us[m] * stride, L);
  }
  for (int64_t g = 0; g < lay.ng; ++g) {
    const double lam = p.lam_g[g];
    double* table = lay.table(b, stride, g);
    double* __restrict p0 = table;
#pragma omp simd
    for (int64_t i = 0; i < L; ++i) p0[i] = 1.0 + lam * cs[i];
    for (int q = 1; q <= p.q_max[g]; ++q) {
      const double* __restrict lo = table + (q - 1) * stride;
      double* __restrict hi = table + q * stride;
#pragma omp simd
      for (int64_t i = 0; i < L; ++i) hi[i] = lo[i] * lo[i];
    }
    for (int64_t l = 0; l < lay.nl; ++l) {
      if (p.g_of[l] != int(g)) continue;
      double* al = lay.ang(b, stride, l);
      double* dl = lay.dang(b, stride, l);
      const int k = p.zeta_int_u[l];
      if (k > 0) {
        if (power_row(k, table, stride, ones, al) == al) power_product(k, table, stride, al, L);
        if (power_row(k - 1, table, stride, ones, dl) == dl) power_product(k - 1, table, stride, dl, L);
      } else {
        const double zeta = p.zeta_u[l];
        for (int64_t i = 0; i < L; ++i) {
          al[i] = std::pow(p0[i], zeta);
          dl[i] = std::pow(p0[i], zeta - 1.0);
        }
      }
    }
  }
  terms_view(p, lay, b, stride, ones, grad, t);
}

// triplet_terms in the work arrays
const Terms& work_terms(const Params& p, const Span& sp, Work& W, bool grad) {
  triplet_terms(p, TermsLayout(p), sp, W.block.data(), W.cap, W.ones.data(), grad, W.terms);
  return W.terms;
}

// d/dv [exp(-eta r^2) fc(r)] = radial_slope v for edge a: exp(-eta r^2) (fc'(r) / r - 2 eta fc)
static inline double radial_slope(double eta, const Block& B, int64_t a) {
  return exp_poly(-eta * B.r2[a]) * (B.dfc[a] * B.inv_r[a] - 2.0 * eta * B.fc[a]);
}

// The G4 row of a span (pair weight pw): row[k] += pw * sum_i A_l(k) X_u(k), the functions of
// one eta together (X_u read once for up to 8 of them)
template <int C, class V>
inline void dot_eta_at(int64_t i, const double* const* a, const double* xv, V* acc) {
  const V x = load<V>(xv + i);
  for (int f = 0; f < C; ++f) acc[f] += load<V>(a[f] + i) * x;
}
template <int C>
void dot_eta(int64_t L, const double* const* a, const double* xv, double* out) {
  vnd acc[C];
  double tail[C];
  for (int f = 0; f < C; ++f) { acc[f] = vnd{} ; tail[f] = 0.0; }
  int64_t i = 0;
  for (; i + kLanes <= L; i += kLanes) dot_eta_at<C, vnd>(i, a, xv, acc);
  for (; i < L; ++i) dot_eta_at<C, double>(i, a, xv, tail);
  for (int f = 0; f < C; ++f) {
    double s = tail[f];
    for (int q = 0; q < kLanes; ++q) s += acc[f][q];
    out[f] = s;
  }
}
using DotEta = void (*)(int64_t, const double* const*, const double*, double*);
constexpr DotEta kDotEta[9] = {nullptr, dot_eta<1>, dot_eta<2>, dot_eta<3>, dot_eta<4>,
                               dot_eta<5>, dot_eta<6>, dot_eta<7>, dot_eta<8>};

void forward_span(const Params& p, const Terms& t, int64_t L, double* row, double pw) {
  const int nu = int(p.eta_u.size());
  for (int u = 0; u < nu; ++u) {
    int ks[64];
    const double* a[8];
    int n = 0;
    for (int k = 0; k < p.A; ++k) if (p.eta_of[k] == u) ks[n++] = k;
    for (int f0 = 0; f0 < n; f0 += 8) {
      const int c = std::min(8, n - f0);
      double out[8];
      for (int f = 0; f < c; ++f) a[f] = t.a[p.lz_of[ks[f0 + f]]];
      kDotEta[c](L, a, t.xu + u * t.stride, out);
      for (int f = 0; f < c; ++f) row[ks[f0 + f]] += pw * p.a_fac[p.lz_of[ks[f0 + f]]] * out[f];
    }
  }
}

// exp(-eta_k r^2) of every edge, row k of B.n (vectorised over the edges), for both passes
void radial_exps(const Params& p, Block& B) {
  B.rexp.resize(p.R * B.n);
  for (int64_t k = 0; k < p.R; ++k) {
    const double eta = p.radial_etas[k], *__restrict r2 = B.r2.data();
    double* __restrict row = B.rexp.data() + k * B.n;
#pragma omp simd
    for (int64_t a = 0; a < B.n; ++a) row[a] = exp_poly(-eta * r2[a]);
  }
}

// G2[s, k] = sum over the edges of species s of exp(-eta_k r^2) fc(r); the exps are kept
void radial_forward(const Params& p, Block& B, double* g) {
  radial_exps(p, B);
  const double* __restrict fc = B.fc.data();
  for (int64_t s = 0; s < p.S; ++s)
    for (int64_t k = 0; k < p.R; ++k) {
      const double* __restrict e = B.rexp.data() + k * B.n;
      double sum = 0.0;
#pragma omp simd reduction(+ : sum)
      for (int64_t a = B.start[s]; a < B.start[s + 1]; ++a) sum += e[a] * fc[a];
      g[s * p.R + k] += sum;
    }
}

void forward_centre(const Params& p, Block& B, double* g) {
  radial_forward(p, B, g);
  double* g4 = g + p.S * p.R;
  B.each_triplet_set(p, [&](int64_t sa, int64_t sb, Triplets& T) {
    const Span sp = span_of(T, 0, T.L);
    forward_span(p, work_terms(p, sp, B.work, false), sp.L,
                 g4 + p.pair_index[sa * p.S + sb] * p.A, p.pair_weight[sa * p.S + sb]);
  });
}

// The functions of one eta in a chunk of at most 4 (a fixed count keeps the sums in
// registers): their A and dA/dcos rows, weights (pair weight and factors folded in), X row.
struct EtaChunk {
  const double* const* a;
  const double* const* d;
  const double *wa, *wd, *x;
  double eta;
};

// Two chunks (C2 = 0: one) per pass over the span: Y = sum_f wa_f A_f and D = sum_f wd_f
// dA_f/dcos per chunk, then d/dlog(w) += X Y, d/ds -= eta X Y, d/dcos += X D (First: =).
template <int C1, int C2, bool First>
void add_eta_chunks(const EtaChunk& c1, const EtaChunk& c2, int64_t L, double* __restrict dw,
                    double* __restrict ds, double* __restrict dc) {
  const double* a1[C1 + 1];
  const double* d1[C1 + 1];
  const double* a2[C2 + 1];
  const double* d2[C2 + 1];
  double wa1[C1 + 1], wd1[C1 + 1], wa2[C2 + 1], wd2[C2 + 1];
  for (int f = 0; f < C1; ++f) { a1[f] = c1.a[f]; d1[f] = c1.d[f]; wa1[f] = c1.wa[f]; wd1[f] = c1.wd[f]; }
  for (int f = 0; f < C2; ++f) { a2[f] = c2.a[f]; d2[f] = c2.d[f]; wa2[f] = c2.wa[f]; wd2[f] = c2.wd[f]; }
  const double *__restrict x1 = c1.x, *__restrict x2 = C2 > 0 ? c2.x : c1.x;
  const double e1 = c1.eta, e2 = C2 > 0 ? c2.eta : 0.0;
#pragma omp simd
  for (int64_t i = 0; i < L; ++i) {
    double y1 = 0.0, q1 = 0.0, y2 = 0.0, q2 = 0.0;
    for (int f = 0; f < C1; ++f) { y1 += wa1[f] * a1[f][i]; q1 += wd1[f] * d1[f][i]; }
    for (int f = 0; f < C2; ++f) { y2 += wa2[f] * a2[f][i]; q2 += wd2[f] * d2[f][i]; }
    double xy = x1[i] * y1, sy = e1 * xy, cd = x1[i] * q1;
    if (C2 > 0) {
      const double xy2 = x2[i] * y2;
      xy += xy2;
      sy += e2 * xy2;
      cd += x2[i] * q2;
    }
    if (First) { dw[i] = xy; ds[i] = -sy; dc[i] = cd; }
    else { dw[i] += xy; ds[i] -= sy; dc[i] += cd; }
  }
}
using EtaChunks = void (*)(const EtaChunk&, const EtaChunk&, int64_t, double*, double*, double*);
template <size_t... I>
constexpr std::array<EtaChunks, sizeof...(I)> eta_chunk_table(std::index_sequence<I...>) {
  return {&add_eta_chunks<int(I / 10) + 1, int(I / 2) % 5, I % 2 == 1>...};
}
// [C1 - 1][C2][First]
constexpr auto kEtaChunks = eta_chunk_table(std::make_index_sequence<40>{});

// The chain rule from d/dlog(w), d/ds and d/dcos of L triplets to their two edge vectors:
// g_j = a_j v_j + b v_k, g_k = a_k v_k + b v_j, the factors into aj, ak, bb. The r_jk part of
// d/dlog(w), d/dlog(w) fc'(r_jk) / (fc(r_jk) r_jk), from lf3 = fc'(r_jk) / (fc(r_jk) r_jk), or
// given as x3 (lf3 null).
void chain_rule(const Block& B, const int64_t* __restrict tj, const int64_t* __restrict tk,
                const double* __restrict cs, const double* __restrict lf3,
                const double* __restrict dwp, const double* __restrict dsp,
                const double* __restrict dcp, int64_t L, double* __restrict aj,
                double* __restrict ak, double* __restrict bb, const double* __restrict x3 = nullptr) {
  const double *__restrict inv = B.inv_r.data(), *__restrict lfc = B.lfc.data();
#pragma omp simd
  for (int64_t i = 0; i < L; ++i) {
    const int64_t j = tj[i], k = tk[i];
    const double ij = inv[j], ik = inv[k], d_cos = dcp[i], xw = dwp[i];
    const double d_s2 = 2.0 * dsp[i], q3 = d_s2 + (lf3 ? xw * lf3[i] : x3[i]), dc = d_cos * cs[i];
    aj[i] = d_s2 + xw * lfc[j] + q3 - dc * ij * ij;
    ak[i] = d_s2 + xw * lfc[k] + q3 - dc * ik * ik;
    bb[i] = d_cos * ij * ik - q3;
  }
}

// The chain-rule factors of L triplets added to the block's gradient rows; the triplets come
// in runs of one first edge j, whose sums stay in registers until the run ends.
void scatter_triplets(Block& B, const int64_t* tj, const int64_t* tk, int64_t L,
                      const double* aj, const double* ak, const double* bb) {
  const double *__restrict x = B.x.data(), *__restrict y = B.y.data(), *__restrict z = B.z.data();
  double *__restrict gx = B.gx.data(), *__restrict gy = B.gy.data(), *__restrict gz = B.gz.data();
  int64_t jc = L > 0 ? tj[0] : 0;
  double sa = 0.0, sx = 0.0, sy = 0.0, sz = 0.0;
  for (int64_t i = 0; i < L; ++i) {
    const int64_t j = tj[i], k = tk[i];
    if (j != jc) {
      gx[jc] += sa * x[jc] + sx; gy[jc] += sa * y[jc] + sy; gz[jc] += sa * z[jc] + sz;
      jc = j;
      sa = sx = sy = sz = 0.0;
    }
    const double b = bb[i], a = ak[i];
    sa += aj[i];
    sx += b * x[k]; sy += b * y[k]; sz += b * z[k];
    gx[k] += a * x[k] + b * x[j]; gy[k] += a * y[k] + b * y[j]; gz[k] += a * z[k] + b * z[j];
  }
  if (L > 0) { gx[jc] += sa * x[jc] + sx; gy[jc] += sa * y[jc] + sy; gz[jc] += sa * z[jc] + sz; }
}

// dE/d(edge vectors) of a span, given the weights wrow = dE/dG of its row (pair weight pw).
// Per triplet: d/dcos, d/ds and d/dlog(w) of sum_k W_k A_l(k) X_u(k), via Y_u = sum_{k: eta_k
// = u} W_k A_l(k) and D_u = sum_{k: eta_k = u} W_k dA_l(k)/dcos; then the chain rule to the
// two edge vectors, added to the block's gradient rows, or with out_aj, out_ak, out_bb kept
// there per triplet for scatter_runs.
void backward_span(const Params& p, Block& B, const Span& sp, const Terms& t,
                   const double* wrow, double pw, double* out_aj = nullptr,
                   double* out_ak = nullptr, double* out_bb = nullptr) {
  Work& W = B.work;
  const int64_t L = sp.L;
  double *__restrict dwp = W.dw.data(), *__restrict dsp = W.ds.data(), *__restrict dcp = W.dcos.data();
  // the functions grouped by eta, with their weights (pair weight and A/dA factors folded in)
  const int64_t nu = int64_t(p.eta_u.size());
  int64_t first[17] = {0}, nf = 0;
  const double* ap[64];
  const double* dpp[64];
  double wa[64], wd[64];
  TORCH_CHECK(nu <= 16, "bp_features: at most 16 distinct angular etas");
  for (int64_t u = 0; u < nu; ++u) {
    first[u] = nf;
    for (int64_t k = 0; k < p.A; ++k) {
      if (p.eta_of[k] != int(u)) continue;
      const int l = p.lz_of[k];
      ap[nf] = t.a[l];
      dpp[nf] = t.d[l];
      wa[nf] = wrow[k] * pw * p.a_fac[l];
      wd[nf] = wrow[k] * pw * p.d_fac[l];
      ++nf;
    }
  }
  first[nu] = nf;
  // chunks of at most 4 functions of one eta (a fixed count keeps the sums in registers),
  // two per pass over the span; the first pass stores, the others add
  EtaChunk chunks[64];
  int size[64], nc = 0;
  for (int64_t u = 0; u < nu; ++u)
    for (int64_t f = first[u]; f < first[u + 1]; f += 4) {
      size[nc] = int(std::min<int64_t>(4, first[u + 1] - f));
      chunks[nc++] = {ap + f, dpp + f, wa + f, wd + f, t.xu + u * t.stride, p.eta_u[u]};
    }
  if (nc == 0) {
    std::fill(dwp, dwp + L, 0.0);
    std::fill(dsp, dsp + L, 0.0);
    std::fill(dcp, dcp + L, 0.0);
  }
  for (int c = 0; c < nc; c += 2) {
    const bool pair = c + 1 < nc;
    kEtaChunks[(size[c] - 1) * 10 + (pair ? size[c + 1] : 0) * 2 + (c == 0 ? 1 : 0)](
        chunks[c], chunks[pair ? c + 1 : c], L, dwp, dsp, dcp);
  }
  double *__restrict aj = out_aj ? out_aj : W.aj.data(), *__restrict ak = out_ak ? out_ak : W.ak.data(),
         *__restrict bb = out_bb ? out_bb : W.bb.data();
  chain_rule(B, sp.j, sp.k, sp.cs, t.lf3, dwp, dsp, dcp, L, aj, ak, bb);
  if (!out_aj) scatter_triplets(B, sp.j, sp.k, L, aj, ak, bb);  // else later, scatter_runs
}

#if defined(__AVX512F__)
// the sum of the 8 lanes (GCC 12 warns about its own _mm512_reduce_add_pd)
inline double lane_sum(__m512d v) {
  alignas(64) double a[8];
  _mm512_store_pd(a, v);
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// The chain-rule factors of a whole set added to the block's gradient rows in candidate
// order: per first edge j its candidates k are contiguous edges, so x[k] and g[k] are plain
// vector loads and stores; the factors, compacted, are expanded back by the pass bits.
// Factors gives, for the run of first edge j (run(j)) and 8 candidates from k0 (at), a_j,
// a_k and b of each (zero where not kept).
template <class Factors>
void scatter_runs(Block& B, const Triplets& T, Factors&& factors) {
  const double *__restrict x = B.x.data(), *__restrict y = B.y.data(), *__restrict z = B.z.data();
  double *__restrict gx = B.gx.data(), *__restrict gy = B.gy.data(), *__restrict gz = B.gz.data();
  const uint8_t* bits = T.bits.data();
  for (int64_t q = 0; q < T.nruns; ++q) {
    const Triplets::Run& r = T.runs[q];
    const int64_t j = r.j;
    int64_t off = r.t0;
    factors.run(j);
    const __m512d xj = _mm512_set1_pd(x[j]), yj = _mm512_set1_pd(y[j]), zj = _mm512_set1_pd(z[j]);
    __m512d sx = _mm512_setzero_pd(), sy = sx, sz = sx, sa = sx;
    for (int64_t t = 0; t < r.m; t += 8) {
      const __mmask8 keep = *bits++;
      if (!keep) continue;
      const int64_t k0 = r.b0 + t;
      __m512d aj, a, b;
      factors.at(keep, off, k0, aj, a, b);
      sa = _mm512_add_pd(sa, aj);
      off += __builtin_popcount(unsigned(keep));
      const __m512d xk = _mm512_maskz_loadu_pd(keep, x + k0), yk = _mm512_maskz_loadu_pd(keep, y + k0),
                    zk = _mm512_maskz_loadu_pd(keep, z + k0);
      sx = _mm512_fmadd_pd(b, xk, sx);
      sy = _mm512_fmadd_pd(b, yk, sy);
      sz = _mm512_fmadd_pd(b, zk, sz);
      _mm512_mask_storeu_pd(gx + k0, keep, _mm512_fmadd_pd(a, xk, _mm512_fmadd_pd(b, xj, _mm512_maskz_loadu_pd(keep, gx + k0))));
      _mm512_mask_storeu_pd(gy + k0, keep, _mm512_fmadd_pd(a, yk, _mm512_fmadd_pd(b, yj, _mm512_maskz_loadu_pd(keep, gy + k0))));
      _mm512_mask_storeu_pd(gz + k0, keep, _mm512_fmadd_pd(a, zk, _mm512_fmadd_pd(b, zj, _mm512_maskz_loadu_pd(keep, gz + k0))));
    }
    const double s_a = lane_sum(sa);
    gx[j] += s_a * x[j] + lane_sum(sx);
    gy[j] += s_a * y[j] + lane_sum(sy);
    gz[j] += s_a * z[j] + lane_sum(sz);
  }
}

// The factors kept per triplet (backward_span's out_aj, out_ak, out_bb).
struct KeptFactors {
  const double *aj, *ak, *bb;
  explicit KeptFactors(const Triplets& T) : aj(T.aj.data()), ak(T.ak.data()), bb(T.bb.data()) {}
  void run(int64_t) {}
  void at(__mmask8 keep, int64_t off, int64_t, __m512d& a_j, __m512d& a_k, __m512d& b) const {
    a_j = _mm512_maskz_expand_pd(keep, _mm512_loadu_pd(aj + off));
    a_k = _mm512_maskz_expand_pd(keep, _mm512_loadu_pd(ak + off));
    b = _mm512_maskz_expand_pd(keep, _mm512_loadu_pd(bb + off));
  }
};

// The chain rule itself for the default set (default_gradient's rows): j's 1/r and fc'/(fc r)
// per run, k's as vector loads (no gathers, as chain_rule needs in compacted order).
struct DefaultFactors {
  const double *xw, *t2, *q3, *dc, *dcc, *inv, *lfc;
  __m512d ij, ij2, lj;
  DefaultFactors(const Block& B, const Triplets& T)
      : xw(T.xw.data()), t2(T.t2.data()), q3(T.q3.data()), dc(T.dc.data()), dcc(T.dcc.data()),
        inv(B.inv_r.data()), lfc(B.lfc.data()) {}
  void run(int64_t j) {
    ij = _mm512_set1_pd(inv[j]);
    ij2 = _mm512_mul_pd(ij, ij);
    lj = _mm512_set1_pd(lfc[j]);
  }
  void at(__mmask8 keep, int64_t off, int64_t k0, __m512d& a_j, __m512d& a_k, __m512d& b) const {
    const __m512d w = _mm512_maskz_expand_pd(keep, _mm512_loadu_pd(xw + off)),
                  t = _mm512_maskz_expand_pd(keep, _mm512_loadu_pd(t2 + off)),
                  q = _mm512_maskz_expand_pd(keep, _mm512_loadu_pd(q3 + off)),
                  c = _mm512_maskz_expand_pd(keep, _mm512_loadu_pd(dc + off)),
                  cc = _mm512_maskz_expand_pd(keep, _mm512_loadu_pd(dcc + off)),
                  ik = _mm512_maskz_loadu_pd(keep, inv + k0), lk = _mm512_maskz_loadu_pd(keep, lfc + k0);
    a_j = _mm512_fnmadd_pd(cc, ij2, _mm512_fmadd_pd(w, lj, t));
    a_k = _mm512_fnmadd_pd(cc, _mm512_mul_pd(ik, ik), _mm512_fmadd_pd(w, lk, t));
    b = _mm512_fmsub_pd(_mm512_mul_pd(c, ij), ik, q);
  }
};
#endif

// radial: d/dv [exp(-eta r^2) fc(r)] = exp(-eta r^2) (fc'(r) / r - 2 eta fc) v, from the
// exps radial_exps kept
void radial_backward(const Params& p, Block& B, const double* wgt) {
  const double *__restrict fc = B.fc.data(), *__restrict dfc = B.dfc.data(),
               *__restrict inv = B.inv_r.data();
  double* __restrict c = B.work.dw.data();                // dE/dr / r per edge
  std::fill(c, c + B.n, 0.0);
  for (int64_t s = 0; s < p.S; ++s) {
    const double* row = wgt + s * p.R;
    for (int64_t k = 0; k < p.R; ++k) {
      const double w = row[k], w_eta = 2.0 * p.radial_etas[k] * row[k];
      const double* __restrict e = B.rexp.data() + k * B.n;
#pragma omp simd
      for (int64_t a = B.start[s]; a < B.start[s + 1]; ++a)
        c[a] += e[a] * (w * dfc[a] * inv[a] - w_eta * fc[a]);
    }
  }
#pragma omp simd
  for (int64_t a = 0; a < B.n; ++a) {
    B.gx[a] += c[a] * B.x[a];
    B.gy[a] += c[a] * B.y[a];
    B.gz[a] += c[a] * B.z[a];
  }
}

void backward_centre(const Params& p, Block& B, const double* wgt) {
  radial_exps(p, B);
  radial_backward(p, B, wgt);
  const double* w4 = wgt + p.S * p.R;
  B.each_triplet_set(p, [&](int64_t sa, int64_t sb, Triplets& T) {
    const Span sp = span_of(T, 0, T.L);
    backward_span(p, B, sp, work_terms(p, sp, B.work, true),
                  w4 + p.pair_index[sa * p.S + sb] * p.A, p.pair_weight[sa * p.S + sb]);
  });
}

// Forward mode: dG = sum_e dG/dv_e . u_e for a perturbation u of the edge vectors. Force
// training needs it: the forces are J^T dE/dG, so the loss reaches dE/dG (and the weights)
// through J u, with u = dLoss/d(edge vectors). Per triplet: the change of cos theta, of s and
// of log w (w = fc(r_ij) fc(r_ik) fc(r_jk)).
void jvp_span(const Params& p, Block& B, const Span& sp, const Terms& t, double* row, double pw) {
  Work& W = B.work;
  const int64_t L = sp.L;
  double *__restrict dcp = W.dcos.data(), *__restrict dsp = W.ds.data(), *__restrict dlw = W.dw.data();
  for (int64_t i = 0; i < L; ++i) {
    const int64_t j = sp.j[i], k = sp.k[i];
    const double ddu = (B.x[k] - B.x[j]) * (B.ux[k] - B.ux[j]) +
                       (B.y[k] - B.y[j]) * (B.uy[k] - B.uy[j]) +
                       (B.z[k] - B.z[j]) * (B.uz[k] - B.uz[j]);
    const double cross = B.x[j] * B.ux[k] + B.y[j] * B.uy[k] + B.z[j] * B.uz[k] +
                         B.x[k] * B.ux[j] + B.y[k] * B.uy[j] + B.z[k] * B.uz[j];
    dcp[i] = cross * B.inv_r[j] * B.inv_r[k] - sp.cs[i] * (B.vu[j] / B.r2[j] + B.vu[k] / B.r2[k]);
    dsp[i] = 2.0 * (B.vu[j] + B.vu[k] + ddu);
    dlw[i] = B.lfc[j] * B.vu[j] + B.lfc[k] * B.vu[k] +
             t.lf3[i] * ddu;
  }
  for (int64_t k = 0; k < p.A; ++k) {
    const int l = p.lz_of[k];
    const double eta = p.eta_u[p.eta_of[k]], fa = p.a_fac[l], fd = p.d_fac[l];
    const double* __restrict al = t.a[l];
    const double* __restrict dl = t.d[l];
    const double* __restrict xv = t.xu + p.eta_of[k] * t.stride;
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < L; ++i)
      acc += xv[i] * (fd * dl[i] * dcp[i] + fa * al[i] * (dlw[i] - eta * dsp[i]));
    row[k] += pw * acc;
  }
}

void jvp_centre(const Params& p, Block& B, double* dg) {
  for (int64_t a = 0; a < B.n; ++a) {
    double* row = dg + B.sp[a] * p.R;
    for (int64_t k = 0; k < p.R; ++k) row[k] += radial_slope(p.radial_etas[k], B, a) * B.vu[a];
  }
  double* dg4 = dg + p.S * p.R;
  B.each_triplet_set(p, [&](int64_t sa, int64_t sb, Triplets& T) {
    const Span sp = span_of(T, 0, T.L);
    jvp_span(p, B, sp, work_terms(p, sp, B.work, true), dg4 + p.pair_index[sa * p.S + sb] * p.A,
             p.pair_weight[sa * p.S + sb]);
  });
}

// ----------------------------------------------------------------------------- default set
// Fused inference for the default 22 functions (Params::DefaultSet) with every per-triplet
// term in registers, kLanes triplets at a time: the 6 X_u = w exp(-eta_u s) as powers of one
// short exp series (one chain of products), the A_l and dA_l/dcos from 1 +- cos and the
// squarings of 1 + cos, the 22 feature sums as vector accumulators. The gradient pass
// recomputes them from a tape of 3 rows per triplet (the exp, fc(r_jk) and fc'(r_jk) / r_jk:
// no division) where the general path writes and reads back about 17 rows per triplet. (A
// tape of all six powers, to spare the gradient pass its 13 products, measured no faster.)

constexpr int64_t padded(int64_t L) { return (L + kLanes - 1) / kLanes * kLanes; }

// The lanes beyond a set's last triplet carry no weight (w0 = 0) and finite terms.
void pad_set(Triplets& T) {
  for (int64_t i = T.L; i < padded(T.L); ++i) T.r3[i] = T.cs[i] = T.s[i] = T.w0[i] = 0.0;
}

// P_u = exp(-eta_u s) for the slots u of DefaultSet from e = exp(-base s): e^{1, 30, 80, 150,
// 250, 450} by one chain of 13 products
inline void default_powers(vnd e, vnd* P) {
  const vnd e2 = e * e, e5 = (e2 * e2) * e, e10 = e5 * e5, e20 = e10 * e10, e30 = e20 * e10,
            e50 = e30 * e20, e100 = e50 * e50;
  P[0] = e;
  P[1] = e30;
  P[2] = e50 * e30;
  P[3] = e100 * e50;
  P[4] = P[3] * e100;
  P[5] = P[4] * (e100 * e100);
}

// A_l / a_fac and, with d, dA_l/dcos / d_fac for the slots l: (1 -+ cos)^zeta and
// (1 -+ cos)^(zeta - 1)
inline void default_a(vnd c, vnd* a, vnd* d = nullptr) {
  const vnd p = 1.0 + c, m = 1.0 - c, p2 = p * p, p4 = p2 * p2, p8 = p4 * p4;
  a[0] = m; a[1] = p; a[2] = m * m; a[3] = p2; a[4] = p4; a[5] = p8 * p8;
  if (!d) return;
  d[0] = d[1] = splat<vnd>(1.0);
  d[2] = m; d[3] = p; d[4] = p2 * p; d[5] = (p8 * p4) * (p2 * p);
}

// The G4 row of set T (pair weight pw) and its tape: rows exp(-base s), fc(r_jk),
// fc'(r_jk) / r_jk of Lp = padded(L).
void default_forward(const Params& p, Triplets& T, double* tape, int64_t Lp, double* row,
                     double pw) {
  const Params::DefaultSet& D = p.fast;
  const double half_k = 0.5 * M_PI / p.rc, k2 = half_k * half_k;
  vnd acc[22];
  for (vnd& v : acc) v = vnd{};
  for (int64_t i = 0; i < Lp; i += kLanes) {
    const vnd z2 = k2 * load<vnd>(T.r3.data() + i), c = cos_sq(z2), s = load<vnd>(T.s.data() + i);
    const vnd f3 = c * c, w = load<vnd>(T.w0.data() + i) * f3;
    const vnd e = exp_small(-D.base * s);
    store(tape + i, e);
    store(tape + Lp + i, f3);
    store(tape + 2 * Lp + i, (-2.0 * k2) * sinc_sq(z2) * c);
    vnd x[6], a[6];
    default_powers(e, x);
    for (vnd& v : x) v *= w;
    default_a(load<vnd>(T.cs.data() + i), a);
#pragma GCC unroll 22
    for (int n = 0; n < 22; ++n) acc[n] += a[kDefaultL[n]] * x[kDefaultU[n]];
  }
  for (int n = 0; n < 22; ++n) {
    double sum = 0.0;
    for (int q = 0; q < kLanes; ++q) sum += acc[n][q];
    row[D.fn[n]] += pw * D.a_fac[kDefaultL[n]] * sum;
  }
}

// The gradient pass of set T from its tape, given wrow = dE/dG of its row: per triplet Y_u =
// sum wa A_l and Q_u = sum wd dA_l/dcos over the functions of eta u, then with X_u = w P_u:
// d/dlog(w) = w sum P_u Y_u, d/ds = -w sum eta_u P_u Y_u, d/dcos = w sum P_u Q_u, and x3 =
// d/dlog(w) fc'(r_jk) / (fc(r_jk) r_jk) without the division; kLanes triplets at a time from
// c0 to c1 (padded), handed to out(i, d/dlog(w), d/ds, d/dcos, x3).
template <class Out>
void default_backward(const Params& p, const Triplets& T, const double* tape, int64_t Lp,
                      const double* wrow, double pw, int64_t c0, int64_t c1, Out&& out) {
  const Params::DefaultSet& D = p.fast;
  double wa[22], wd[22], q0[6] = {};   // q0: zeta 1, dA/dcos constant
  for (int n = 0; n < 22; ++n) {
    const int l = kDefaultL[n];
    wa[n] = wrow[D.fn[n]] * pw * D.a_fac[l];
    wd[n] = wrow[D.fn[n]] * pw * D.d_fac[l];
    if (l < 2) q0[kDefaultU[n]] += wd[n];
  }
  for (int64_t i = c0; i < c1; i += kLanes) {
    vnd x[6], a[6], d[6], y[6], q[6];
    default_powers(load<vnd>(tape + i), x);
    default_a(load<vnd>(T.cs.data() + i), a, d);
    for (int u = 0; u < 6; ++u) { y[u] = vnd{}; q[u] = splat<vnd>(q0[u]); }
#pragma GCC unroll 22
    for (int n = 0; n < 22; ++n) {
      y[kDefaultU[n]] += wa[n] * a[kDefaultL[n]];
      if (kDefaultL[n] >= 2) q[kDefaultU[n]] += wd[n] * d[kDefaultL[n]];
    }
    vnd sy = vnd{}, se = vnd{}, sq = vnd{};
    for (int u = 0; u < 6; ++u) {
      const vnd xy = x[u] * y[u];
      sy += xy;
      se += D.eta[u] * xy;
      sq += x[u] * q[u];
    }
    const vnd w0 = load<vnd>(T.w0.data() + i), w = w0 * load<vnd>(tape + Lp + i);
    out(i, w * sy, -(w * se), w * sq, (w0 * sy) * load<vnd>(tape + 2 * Lp + i));
  }
}

// The gradient pass of set T added to the block's gradient rows.
void default_gradient(const Params& p, Block& B, Triplets& T, const double* tape, int64_t Lp,
                      const double* wrow, double pw) {
#if defined(__AVX512F__)
  // per triplet what needs no edge's own terms, for scatter_runs (DefaultFactors)
  default_backward(p, T, tape, Lp, wrow, pw, 0, Lp, [&](int64_t i, vnd xw, vnd ds, vnd dc, vnd x3) {
    const vnd ds2 = 2.0 * ds, q3 = ds2 + x3;
    store(T.xw.data() + i, xw);
    store(T.t2.data() + i, ds2 + q3);
    store(T.q3.data() + i, q3);
    store(T.dc.data() + i, dc);
    store(T.dcc.data() + i, dc * load<vnd>(T.cs.data() + i));
  });
  scatter_runs(B, T, DefaultFactors(B, T));
#else
  // span by span: chain_rule in compacted order, then the scalar scatter
  Work& W = B.work;
  for (int64_t b = 0; b < Lp; b += Block::kSpan) {
    const int64_t end = std::min(Lp, b + Block::kSpan);
    default_backward(p, T, tape, Lp, wrow, pw, b, end, [&](int64_t i, vnd xw, vnd ds, vnd dc, vnd x3) {
      store(W.dw.data() + (i - b), xw);
      store(W.ds.data() + (i - b), ds);
      store(W.dcos.data() + (i - b), dc);
      store(W.aj.data() + (i - b), x3);
    });
    chain_rule(B, T.j.data() + b, T.k.data() + b, T.cs.data() + b, nullptr, W.dw.data(),
               W.ds.data(), W.dcos.data(), std::min(end, T.L) - b, T.aj.data() + b,
               T.ak.data() + b, T.bb.data() + b, W.aj.data());
  }
  scatter_triplets(B, T.j.data(), T.k.data(), T.L, T.aj.data(), T.ak.data(), T.bb.data());
#endif
}

// Features and dE/d(edge vectors) of one centre from one scan (fused inference): the centre's
// triplets are kept whole, their terms computed once, span by span, and kept on the tape for
// the gradient pass; energy_and_dg(g, dg) turns the features g into the energy and dE/dG.
template <class EnergyAndDg>
double energy_and_gradient_centre(const Params& p, Block& B, double* g, double* dg,
                                  EnergyAndDg&& energy_and_dg) {
  const TermsLayout lay(p);
  const bool fast = p.fast.on;
  radial_forward(p, B, g);
#if defined(__AVX512F__)
  B.collect_triplets(p, !fast);  // the default set's pass reads no edge indices (scatter_runs)
#else
  B.collect_triplets(p);
#endif
  B.tape.clear();
  if (fast) {                  // the default set's tape: 3 rows of padded(L) per set
    int64_t total = 0;
    for (const Triplets& T : B.sets) total += 3 * padded(T.L);
    if (int64_t(B.tape.data.size()) < total) B.tape.data.resize(total);
  }
  for (int64_t set = 0, off = 0; set < p.S * p.S; ++set) {
    Triplets& T = B.sets[set];
    double* row = g + p.S * p.R + p.pair_index[set] * p.A;
    if (fast) {
      pad_set(T);
      default_forward(p, T, B.tape.data.data() + off, padded(T.L), row, p.pair_weight[set]);
      off += 3 * padded(T.L);
      continue;
    }
    for (int64_t b = 0; b < T.L; b += Block::kSpan) {
      const Span sp = span_of(T, b, std::min(Block::kSpan, T.L - b));
      triplet_terms(p, lay, sp, B.tape.next(lay, sp.L), sp.L, B.work.ones.data(), true,
                    B.tape.view);
      forward_span(p, B.tape.view, sp.L, row, p.pair_weight[set]);
    }
  }
  const double energy = energy_and_dg(g, dg);
  radial_backward(p, B, dg);
  size_t index = 0;
  for (int64_t set = 0, off = 0; set < p.S * p.S; ++set) {
    Triplets& T = B.sets[set];
    const double* wrow = dg + p.S * p.R + p.pair_index[set] * p.A;
    if (fast) {
      default_gradient(p, B, T, B.tape.data.data() + off, padded(T.L), wrow, p.pair_weight[set]);
      off += 3 * padded(T.L);
      continue;
    }
    for (int64_t b = 0; b < T.L; b += Block::kSpan) {
      const Span sp = span_of(T, b, std::min(Block::kSpan, T.L - b));
      const auto& at = B.tape.spans[index++];
      terms_view(p, lay, B.tape.data.data() + at.first, at.second, B.work.ones.data(), true,
                 B.tape.view);
#if defined(__AVX512F__)
      backward_span(p, B, sp, B.tape.view, wrow, p.pair_weight[set], T.aj.data() + b,
                    T.ak.data() + b, T.bb.data() + b);
#else
      backward_span(p, B, sp, B.tape.view, wrow, p.pair_weight[set]);
#endif
    }
#if defined(__AVX512F__)
    scatter_runs(B, T, KeptFactors(T));
#endif
  }
  return energy;
}

// ----------------------------------------------------------------------------- drivers
void check_inputs(const Tensor& vec, const Tensor& offsets, const Tensor& nbr_species) {
  TORCH_CHECK(vec.device().is_cpu(), "bp_features runs on CPU tensors only");
  TORCH_CHECK(vec.dim() == 2 && vec.size(1) == 3 && vec.scalar_type() == torch::kFloat64,
              "bp_features: vec must be a float64 [E, 3] tensor");
  TORCH_CHECK(offsets.dim() == 1 && offsets.size(0) >= 1 && offsets.scalar_type() == torch::kInt64,
              "bp_features: offsets must be an int64 [n_centres + 1] tensor");
  TORCH_CHECK(nbr_species.dim() == 1 && nbr_species.size(0) == vec.size(0) &&
              nbr_species.scalar_type() == torch::kInt64,
              "bp_features: nbr_species must be an int64 [E] tensor");
}

// Centres to threads in small chunks taken from a shared counter (dynamic schedule): the
// cost of a centre varies with its neighbour count, so equal static shares leave a thread idle.
template <class F>
void for_each_centre(int64_t n_centres, F&& work) {
  const int64_t chunk = 8, n_chunks = (n_centres + chunk - 1) / chunk;
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), std::max<int64_t>(n_chunks, 1));
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    Block B;
    for (int64_t k; (k = next.fetch_add(1)) < n_chunks;)
      for (int64_t i = k * chunk; i < std::min(n_centres, (k + 1) * chunk); ++i) work(B, i);
  });
}

// The edge data of every centre, contiguous, and a loop that loads each centre's block
// before ``work(B, i)``: what the three passes share.
struct Edges {
  Tensor vec, offsets, species;
  int64_t n_centres;

  Edges(const Tensor& vec_in, const Tensor& offsets_in, const Tensor& species_in)
      : vec(vec_in.contiguous()), offsets(offsets_in.contiguous()),
        species(species_in.contiguous()), n_centres(offsets.size(0) - 1) {}

  template <class F>
  void each_centre(const Params& p, F&& work) const {
    const double* v = vec.data_ptr<double>();
    const int64_t* off = offsets.data_ptr<int64_t>();
    const int64_t* sp = species.data_ptr<int64_t>();
    for_each_centre(n_centres, [&](Block& B, int64_t i) {
      B.load(p, v, sp, off[i], off[i + 1] - off[i]);
      work(B, i);
    });
  }
};

Tensor features_forward(const Tensor& vec, const Tensor& offsets, const Tensor& species,
                        const Params& p) {
  const Edges e(vec, offsets, species);
  auto out = torch::zeros({e.n_centres, p.n_features}, e.vec.options());
  double* g = out.data_ptr<double>();
  e.each_centre(p, [&](Block& B, int64_t i) { forward_centre(p, B, g + i * p.n_features); });
  return out;
}

Tensor features_backward(const Tensor& grad_in, const Tensor& vec, const Tensor& offsets,
                         const Tensor& species, const Params& p) {
  const Edges e(vec, offsets, species);
  auto grad = grad_in.to(torch::kFloat64).contiguous();
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == e.n_centres && grad.size(1) == p.n_features,
              "bp_features backward: gradient of shape [n_centres, n_features] expected");
  auto out = torch::zeros_like(e.vec);
  const double* gw = grad.data_ptr<double>();
  double* gv = out.data_ptr<double>();
  e.each_centre(p, [&](Block& B, int64_t i) {
    backward_centre(p, B, gw + i * p.n_features);
    for (int64_t a = 0; a < B.n; ++a) {
      double* o = gv + 3 * B.edge[a];
      o[0] = B.gx[a];
      o[1] = B.gy[a];
      o[2] = B.gz[a];
    }
  });
  return out;
}

Tensor features_jvp(const Tensor& u_in, const Tensor& vec, const Tensor& offsets,
                    const Tensor& species, const Params& p) {
  const Edges e(vec, offsets, species);
  auto u = u_in.to(torch::kFloat64).contiguous();
  TORCH_CHECK(u.sizes() == e.vec.sizes(), "bp_features jvp: perturbation of shape [E, 3] expected");
  auto out = torch::zeros({e.n_centres, p.n_features}, e.vec.options());
  const double* up = u.data_ptr<double>();
  double* dg = out.data_ptr<double>();
  e.each_centre(p, [&](Block& B, int64_t i) {
    B.load_u(up);
    jvp_centre(p, B, dg + i * p.n_features);
  });
  return out;
}

Params saved_params(const torch::autograd::variable_list& s, size_t first, double cutoff) {
  return make_params(s[first], s[first + 1], s[first + 2], s[first + 3], s[first + 4],
                     s[first + 5], cutoff);
}

// The gradient pass (dE/dG -> dE/d(edge vectors)) as a function of dE/dG that autograd can
// differentiate: what force training (create_graph) needs. Its derivative with respect to
// dE/dG is the forward-mode product above; second derivatives with respect to the edge
// vectors themselves (Hessians) are not implemented and are refused.
class BPFeaturesVJP : public torch::autograd::Function<BPFeaturesVJP> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, Tensor grad, Tensor vec,
                        Tensor offsets, Tensor nbr_species, Tensor radial_etas,
                        Tensor angular_etas, Tensor lambdas, Tensor zetas, Tensor pair_index,
                        Tensor pair_weight, double cutoff) {
    ctx->save_for_backward({vec, offsets, nbr_species, radial_etas, angular_etas, lambdas, zetas,
                            pair_index, pair_weight});
    ctx->saved_data["cutoff"] = cutoff;
    return features_backward(grad, vec, offsets, nbr_species,
                             make_params(radial_etas, angular_etas, lambdas, zetas, pair_index,
                                         pair_weight, cutoff));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!ctx->needs_input_grad(1) && !torch::GradMode::is_enabled(),
                "bp_features has no second derivatives with respect to positions (Hessians); "
                "set the model's fused = False to use its pure-torch path");
    auto s = ctx->get_saved_variables();
    Tensor dg;
    if (ctx->needs_input_grad(0))
      dg = features_jvp(grads[0], s[0], s[1], s[2],
                        saved_params(s, 3, ctx->saved_data["cutoff"].toDouble()));
    return {dg, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(),
            Tensor(), Tensor()};
  }
};

// Autograd: the features' gradient pass, differentiable once more in dE/dG (force training).
class BPFeatures : public torch::autograd::Function<BPFeatures> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, Tensor vec, Tensor offsets,
                        Tensor nbr_species, Tensor radial_etas, Tensor angular_etas,
                        Tensor lambdas, Tensor zetas, Tensor pair_index, Tensor pair_weight,
                        double cutoff) {
    check_inputs(vec, offsets, nbr_species);
    ctx->save_for_backward({vec, offsets, nbr_species, radial_etas, angular_etas, lambdas, zetas,
                            pair_index, pair_weight});
    ctx->saved_data["cutoff"] = cutoff;
    auto p = make_params(radial_etas, angular_etas, lambdas, zetas, pair_index, pair_weight, cutoff);
    return features_forward(vec, offsets, nbr_species, p);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto s = ctx->get_saved_variables();
    const double cutoff = ctx->saved_data["cutoff"].toDouble();
    Tensor g = torch::GradMode::is_enabled()      // create_graph: keep dE/dG differentiable
        ? BPFeaturesVJP::apply(grads[0], s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8],
                               cutoff)
        : features_backward(grads[0], s[0], s[1], s[2], saved_params(s, 3, cutoff));
    return {g, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

Tensor bp_features_autograd(const Tensor& vec, const Tensor& offsets, const Tensor& nbr_species,
                            const Tensor& radial_etas, const Tensor& angular_etas,
                            const Tensor& lambdas, const Tensor& zetas, const Tensor& pair_index,
                            const Tensor& pair_weight, double cutoff) {
  return BPFeatures::apply(vec, offsets, nbr_species, radial_etas, angular_etas, lambdas, zetas,
                           pair_index, pair_weight, cutoff);
}

// ----------------------------------------------------------------------------- inference
// bp_energies: energies of the local atoms, and through autograd the forces, in one call per
// evaluation: per centre one scan of its triplets, the features, its species' MLP (energy and
// dE/dG), and the gradient pass from the terms kept on the tape (energy_and_gradient_centre).
// What LAMMPS, relaxations and probes need: first derivatives with respect to the positions
// only (training keeps bp_features and torch's MLPs).

// One MLP per species: Linear layers (weights [out, in], row-major), an activation between.
struct Readout {
  int64_t F = 0, layers = 0, activation = 0;   // 0 tanh, 1 softplus, 2 silu
  std::vector<Tensor> w, b;                    // [S * layers], contiguous float64
  Tensor mean, stdev, shift;                   // [S, F], [S, F], [S]
  double scale = 1.0;
};

Readout make_readout(const Tensor& feature_mean, const Tensor& feature_std,
                     const std::vector<Tensor>& linear, int64_t activation,
                     const Tensor& energy_scale, const Tensor& energy_shift, int64_t S,
                     int64_t F) {
  Readout r;
  r.F = F;
  TORCH_CHECK(!linear.empty() && linear.size() % (2 * S) == 0,
              "bp_energies: a weight and a bias per layer and species expected");
  TORCH_CHECK(activation >= 0 && activation <= 2, "bp_energies: activation code 0, 1 or 2");
  r.layers = int64_t(linear.size()) / (2 * S);
  r.activation = activation;
  for (int64_t s = 0; s < S; ++s) {
    int64_t width = F;
    for (int64_t l = 0; l < r.layers; ++l) {
      auto w = linear[2 * (s * r.layers + l)].detach().to(torch::kCPU, torch::kFloat64).contiguous();
      auto b = linear[2 * (s * r.layers + l) + 1].detach().to(torch::kCPU, torch::kFloat64).contiguous();
      TORCH_CHECK(w.dim() == 2 && w.size(1) == width && b.dim() == 1 && b.size(0) == w.size(0),
                  "bp_energies: layer ", l, " of species ", s, " has the wrong shape");
      width = w.size(0);
      r.w.push_back(w);
      r.b.push_back(b);
    }
    TORCH_CHECK(width == 1, "bp_energies: the last layer must have one output");
  }
  r.mean = feature_mean.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  r.stdev = feature_std.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  r.shift = energy_shift.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  TORCH_CHECK(r.mean.numel() == S * F && r.stdev.numel() == S * F && r.shift.numel() == S,
              "bp_energies: feature normalisation [S, F] and energy shift [S] expected");
  r.scale = energy_scale.item<double>();
  return r;
}

// value and derivative of the activation as torch computes them (softplus: beta 1,
// threshold 20)
inline void activate(int64_t kind, double z, double& a, double& da) {
  if (kind == 0) {
    a = std::tanh(z);
    da = 1.0 - a * a;
  } else if (kind == 1) {
    if (z > 20.0) { a = z; da = 1.0; return; }
    const double ez = std::exp(z);
    a = std::log1p(ez);
    da = ez / (ez + 1.0);
  } else {
    const double sg = 1.0 / (1.0 + std::exp(-z));
    a = z * sg;
    da = sg * (1.0 + z * (1.0 - sg));
  }
}

// The energy of one centre of species s from its features g, dE/dg into dg. work: the
// activations and their derivatives of every layer, reused.
double readout_centre(const Readout& r, int64_t s, const double* g, double* dg,
                      std::vector<double>& work) {
  const int64_t F = r.F;
  const double* mean = r.mean.data_ptr<double>() + s * F;
  const double* sd = r.stdev.data_ptr<double>() + s * F;
  int64_t total = F, widest = F;
  for (int64_t l = 0; l < r.layers; ++l) {
    total += 2 * r.w[s * r.layers + l].size(0);
    widest = std::max(widest, r.w[s * r.layers + l].size(0));
  }
  work.resize(total + 2 * widest);
  double* x = work.data();
  for (int64_t f = 0; f < F; ++f) x[f] = (g[f] - mean[f]) / sd[f];
  double* act[65];
  double* der[65];
  TORCH_CHECK(r.layers <= 64, "bp_energies: at most 64 layers");
  act[0] = x;
  double* next = x + F;
  for (int64_t l = 0; l < r.layers; ++l) {      // a_l = act(W_l a_{l-1} + b_l), last linear
    const Tensor& W = r.w[s * r.layers + l];
    const int64_t out = W.size(0), in = W.size(1);
    const double* w = W.data_ptr<double>();
    const double* b = r.b[s * r.layers + l].data_ptr<double>();
    double* a = next;
    double* d = next + out;
    next += 2 * out;
    for (int64_t o = 0; o < out; ++o) {
      double z = 0.0;
      const double* __restrict wo = w + o * in;
      const double* __restrict ai = act[l];
      // SIMD partial sums: one chain of dependent additions would wait on each (latency)
#pragma omp simd reduction(+ : z)
      for (int64_t i = 0; i < in; ++i) z += wo[i] * ai[i];
      z += b[o];
      if (l + 1 < r.layers) activate(r.activation, z, a[o], d[o]);
      else { a[o] = z; d[o] = 1.0; }
    }
    act[l + 1] = a;
    der[l] = d;
  }
  const double energy = act[r.layers][0] * r.scale + r.shift.data_ptr<double>()[s];
  // back through the layers: delta = dE/dz_l, then dE/da_{l-1} = W_l^T delta
  double* delta = next;             // two buffers of the widest layer side by side
  double* up = next + widest;
  std::fill(delta, delta + widest, 0.0);
  delta[0] = r.scale;
  for (int64_t l = r.layers - 1; l >= 0; --l) {
    const Tensor& W = r.w[s * r.layers + l];
    const int64_t out = W.size(0), in = W.size(1);
    const double* w = W.data_ptr<double>();
    std::fill(up, up + in, 0.0);
    for (int64_t o = 0; o < out; ++o) {
      const double* wo = w + o * in;
      for (int64_t i = 0; i < in; ++i) up[i] += wo[i] * delta[o];
    }
    if (l > 0)
      for (int64_t i = 0; i < in; ++i) up[i] *= der[l - 1][i];
    std::swap(delta, up);
  }
  for (int64_t f = 0; f < F; ++f) dg[f] = delta[f] / sd[f];
  return energy;
}

// Links the energies to the edge vectors for autograd (dE/dvec was computed with them). The
// network's parameters (in one tensor) are an input too, so that asking for their gradient is
// an error rather than a silent zero.
class EnergiesOfEdges : public torch::autograd::Function<EnergiesOfEdges> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, Tensor vec, Tensor energies,
                        Tensor dvec, Tensor offsets, Tensor parameters) {
    ctx->save_for_backward({dvec, offsets});
    return energies;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!torch::GradMode::is_enabled() && !ctx->needs_input_grad(4),
                "bp_energies (fused inference) gives first derivatives with respect to the "
                "positions only; for second derivatives or the weights' gradients call "
                "model.train() or set the model's fused = False");
    auto s = ctx->get_saved_variables();
    const Tensor& dvec = s[0];
    const int64_t* off = s[1].data_ptr<int64_t>();
    auto ge = grads[0].to(torch::kFloat64).contiguous();
    const double* g = ge.data_ptr<double>();
    auto out = torch::empty_like(dvec);
    const double* d = dvec.data_ptr<double>();
    double* o = out.data_ptr<double>();
    at::parallel_for(0, s[1].size(0) - 1, 64, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t e = off[i]; e < off[i + 1]; ++e)
          for (int c = 0; c < 3; ++c) o[3 * e + c] = g[i] * d[3 * e + c];
    });
    return {out, Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

// Links the energies to the positions for autograd, from edges (centre i, neighbour nbr[e])
// sorted by centre, vec = positions[nbr] - positions[i]: dE/dpositions from dE/dvec in one
// pass (a centre receives minus its edges' sum, a neighbour each edge's), where indexing in
// torch would keep an [E, 3] graph and scatter it twice. Parameters as for EnergiesOfEdges.
class EnergiesOfPositions : public torch::autograd::Function<EnergiesOfPositions> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, Tensor positions, Tensor energies,
                        Tensor dvec, Tensor offsets, Tensor nbr, Tensor parameters) {
    ctx->save_for_backward({dvec, offsets, nbr});
    ctx->saved_data["atoms"] = positions.size(0);
    return energies;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!torch::GradMode::is_enabled() && !ctx->needs_input_grad(5),
                "bp_energies_from_positions (fused inference) gives first derivatives with "
                "respect to the positions only; for second derivatives or the weights' "
                "gradients call model.train() or set the model's fused = False");
    auto s = ctx->get_saved_variables();
    const double* d = s[0].data_ptr<double>();
    const int64_t* off = s[1].data_ptr<int64_t>();
    const int64_t* nb = s[2].data_ptr<int64_t>();
    auto ge = grads[0].to(torch::kFloat64).contiguous();
    const double* g = ge.data_ptr<double>();
    auto out = torch::zeros({ctx->saved_data["atoms"].toInt(), 3}, s[0].options());
    double* o = out.data_ptr<double>();
    // one thread: the neighbours' rows are shared between centres (about a millisecond per
    // 10^5 edges)
    for (int64_t i = 0; i + 1 < s[1].size(0); ++i) {
      double cx = 0.0, cy = 0.0, cz = 0.0;
      for (int64_t e = off[i]; e < off[i + 1]; ++e) {
        const double dx = g[i] * d[3 * e], dy = g[i] * d[3 * e + 1], dz = g[i] * d[3 * e + 2];
        double* on = o + 3 * nb[e];
        on[0] += dx; on[1] += dy; on[2] += dz;
        cx += dx; cy += dy; cz += dz;
      }
      o[3 * i] -= cx; o[3 * i + 1] -= cy; o[3 * i + 2] -= cz;
    }
    return {out, Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

// The network's energies of the centres of edge vectors vec (detached) and, with grad,
// dE/dvec; the parameters that require gradients, in one tensor (for the autograd links).
struct FusedResult {
  Tensor energies, dvec, parameters;
};

FusedResult fused_energies(const Tensor& vec, bool grad, const Tensor& offsets_in,
                           const Tensor& nbr_species, const Tensor& centre_species,
                           const Params& p, const Readout& r, const std::vector<Tensor>& linear) {
  const Edges e(vec, offsets_in, nbr_species);
  auto csp = centre_species.to(torch::kCPU, torch::kInt64).contiguous();
  TORCH_CHECK(csp.numel() == e.n_centres, "bp_energies: one species per centre expected");
  const int64_t* cs = csp.data_ptr<int64_t>();
  for (int64_t i = 0; i < e.n_centres; ++i)
    TORCH_CHECK(cs[i] >= 0 && cs[i] < p.S, "bp_energies: centre species out of range");
  FusedResult out;
  out.energies = torch::empty({e.n_centres}, e.vec.options());
  out.dvec = grad ? torch::empty_like(e.vec) : torch::zeros_like(e.vec);
  double* en = out.energies.data_ptr<double>();
  double* dv = out.dvec.data_ptr<double>();
  e.each_centre(p, [&](Block& B, int64_t i) {
    thread_local std::vector<double> g, dg, work;
    g.assign(p.n_features, 0.0);
    dg.resize(p.n_features);
    const auto energy = [&](const double* gg, double* d) {
      return readout_centre(r, cs[i], gg, d, work);
    };
    if (!grad) {                      // energies only: no gradient pass
      forward_centre(p, B, g.data());
      en[i] = energy(g.data(), dg.data());
      return;
    }
    en[i] = energy_and_gradient_centre(p, B, g.data(), dg.data(), energy);
    for (int64_t a = 0; a < B.n; ++a) {
      double* o = dv + 3 * B.edge[a];
      o[0] = B.gx[a];
      o[1] = B.gy[a];
      o[2] = B.gz[a];
    }
  });
  std::vector<Tensor> trainable;
  for (const auto& t : linear)
    if (t.requires_grad()) trainable.push_back(t.reshape(-1));
  if (!trainable.empty()) out.parameters = torch::cat(trainable);
  return out;
}

Tensor bp_energies(const Tensor& vec_in, const Tensor& offsets_in, const Tensor& nbr_species,
                   const Tensor& centre_species, const Tensor& radial_etas,
                   const Tensor& angular_etas, const Tensor& lambdas, const Tensor& zetas,
                   const Tensor& pair_index, const Tensor& pair_weight, double cutoff,
                   const Tensor& feature_mean, const Tensor& feature_std,
                   std::vector<Tensor> linear, int64_t activation, const Tensor& energy_scale,
                   const Tensor& energy_shift) {
  check_inputs(vec_in, offsets_in, nbr_species);
  const Params p = make_params(radial_etas, angular_etas, lambdas, zetas, pair_index,
                               pair_weight, cutoff);
  const Readout r = make_readout(feature_mean, feature_std, linear, activation, energy_scale,
                                 energy_shift, p.S, p.n_features);
  const bool grad = vec_in.requires_grad() && torch::GradMode::is_enabled();
  FusedResult f = fused_energies(vec_in.detach(), grad, offsets_in, nbr_species, centre_species,
                                 p, r, linear);
  if (!grad && !f.parameters.defined()) return f.energies;
  if (!f.parameters.defined()) f.parameters = torch::zeros({0}, f.energies.options());
  return EnergiesOfEdges::apply(vec_in, f.energies, f.dvec, offsets_in.contiguous(), f.parameters);
}

// bp_energies of the centres 0 .. n-1 (n = offsets.size(0) - 1) with the edges' vectors taken
// from the positions, vec = positions[nbr] - positions[centre], and the gradient linked to the
// positions directly (EnergiesOfPositions).
Tensor bp_energies_from_positions(const Tensor& positions, const Tensor& nbr_in,
                                  const Tensor& offsets_in, const Tensor& nbr_species,
                                  const Tensor& centre_species, const Tensor& radial_etas,
                                  const Tensor& angular_etas, const Tensor& lambdas,
                                  const Tensor& zetas, const Tensor& pair_index,
                                  const Tensor& pair_weight, double cutoff,
                                  const Tensor& feature_mean, const Tensor& feature_std,
                                  std::vector<Tensor> linear, int64_t activation,
                                  const Tensor& energy_scale, const Tensor& energy_shift) {
  TORCH_CHECK(positions.device().is_cpu() && positions.dim() == 2 && positions.size(1) == 3 &&
                  positions.scalar_type() == torch::kFloat64,
              "bp_energies_from_positions: positions must be a float64 [N, 3] CPU tensor");
  TORCH_CHECK(nbr_in.dim() == 1 && nbr_in.scalar_type() == torch::kInt64,
              "bp_energies_from_positions: nbr must be an int64 [E] tensor");
  const Tensor pos = positions.detach().contiguous(), nbr = nbr_in.contiguous(),
               offsets = offsets_in.contiguous();
  const int64_t n_atoms = pos.size(0), n_centres = offsets.size(0) - 1, n_edges = nbr.size(0);
  TORCH_CHECK(offsets.scalar_type() == torch::kInt64 && offsets.dim() == 1 &&
                  offsets.size(0) >= 1 && n_centres <= n_atoms &&
                  offsets.data_ptr<int64_t>()[n_centres] == n_edges,
              "bp_energies_from_positions: offsets [n_centres + 1] over the edges expected, "
              "n_centres <= atoms");
  auto vec = torch::empty({n_edges, 3}, pos.options());
  const double* x = pos.data_ptr<double>();
  const int64_t* nb = nbr.data_ptr<int64_t>();
  const int64_t* off = offsets.data_ptr<int64_t>();
  double* v = vec.data_ptr<double>();
  bool in_range = true;
  for (int64_t e = 0; e < n_edges; ++e) in_range &= nb[e] >= 0 && nb[e] < n_atoms;
  TORCH_CHECK(in_range, "bp_energies_from_positions: neighbour index out of range");
  at::parallel_for(0, n_centres, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t e = off[i]; e < off[i + 1]; ++e)
        for (int c = 0; c < 3; ++c) v[3 * e + c] = x[3 * nb[e] + c] - x[3 * i + c];
  });
  check_inputs(vec, offsets, nbr_species);
  const Params p = make_params(radial_etas, angular_etas, lambdas, zetas, pair_index,
                               pair_weight, cutoff);
  const Readout r = make_readout(feature_mean, feature_std, linear, activation, energy_scale,
                                 energy_shift, p.S, p.n_features);
  const bool grad = positions.requires_grad() && torch::GradMode::is_enabled();
  FusedResult f = fused_energies(vec, grad, offsets, nbr_species, centre_species, p, r, linear);
  if (!grad && !f.parameters.defined()) return f.energies;
  if (!f.parameters.defined()) f.parameters = torch::zeros({0}, f.energies.options());
  return EnergiesOfPositions::apply(positions, f.energies, f.dvec, offsets, nbr, f.parameters);
}

// |positions[nbr] - positions[ctr]|^2 of every edge, in one parallel pass (no [E, 3]
// tensor): what the model's inference path checks its edges with (within the cutoff, not
// zero) and finds its baseline's short edges by.
Tensor edge_r2(const Tensor& positions_in, const Tensor& ctr_in, const Tensor& nbr_in) {
  TORCH_CHECK(positions_in.device().is_cpu() && positions_in.dim() == 2 &&
                  positions_in.size(1) == 3 && positions_in.scalar_type() == torch::kFloat64,
              "edge_r2: positions must be a float64 [N, 3] CPU tensor");
  TORCH_CHECK(ctr_in.dim() == 1 && nbr_in.dim() == 1 && ctr_in.size(0) == nbr_in.size(0) &&
                  ctr_in.scalar_type() == torch::kInt64 && nbr_in.scalar_type() == torch::kInt64,
              "edge_r2: ctr and nbr must be int64 [E] tensors");
  const Tensor pos = positions_in.detach().contiguous(), ctr = ctr_in.contiguous(),
               nbr = nbr_in.contiguous();
  const int64_t n = pos.size(0), E = ctr.size(0);
  auto out = torch::empty({E}, pos.options());
  const double* x = pos.data_ptr<double>();
  const int64_t *c = ctr.data_ptr<int64_t>(), *b = nbr.data_ptr<int64_t>();
  double* r2 = out.data_ptr<double>();
  std::atomic<bool> in_range{true};
  at::parallel_for(0, E, 4096, [&](int64_t e0, int64_t e1) {
    bool ok = true;
    for (int64_t e = e0; e < e1; ++e) {
      ok &= c[e] >= 0 && c[e] < n && b[e] >= 0 && b[e] < n;
      if (!ok) break;
      const double* xi = x + 3 * c[e];
      const double* xj = x + 3 * b[e];
      const double dx = xj[0] - xi[0], dy = xj[1] - xi[1], dz = xj[2] - xi[2];
      r2[e] = dx * dx + dy * dy + dz * dz;
    }
    if (!ok) in_range = false;
  });
  TORCH_CHECK(in_range.load(), "edge_r2: atom index out of range");
  return out;
}

}  // namespace

TORCH_LIBRARY(lammps_adv, m) {
  m.def("bp_features(Tensor vec, Tensor offsets, Tensor nbr_species, Tensor radial_etas, "
        "Tensor angular_etas, Tensor lambdas, Tensor zetas, Tensor pair_index, "
        "Tensor pair_weight, float cutoff) -> Tensor");
  m.def("bp_energies(Tensor vec, Tensor offsets, Tensor nbr_species, Tensor centre_species, "
        "Tensor radial_etas, Tensor angular_etas, Tensor lambdas, Tensor zetas, "
        "Tensor pair_index, Tensor pair_weight, float cutoff, Tensor feature_mean, "
        "Tensor feature_std, Tensor[] linear, int activation, Tensor energy_scale, "
        "Tensor energy_shift) -> Tensor");
  m.def("edge_r2(Tensor positions, Tensor ctr, Tensor nbr) -> Tensor");
  m.def("bp_energies_from_positions(Tensor positions, Tensor nbr, Tensor offsets, "
        "Tensor nbr_species, Tensor centre_species, Tensor radial_etas, Tensor angular_etas, "
        "Tensor lambdas, Tensor zetas, Tensor pair_index, Tensor pair_weight, float cutoff, "
        "Tensor feature_mean, Tensor feature_std, Tensor[] linear, int activation, "
        "Tensor energy_scale, Tensor energy_shift) -> Tensor");
}

TORCH_LIBRARY_IMPL(lammps_adv, CompositeImplicitAutograd, m) {
  m.impl("bp_features", bp_features_autograd);
  m.impl("bp_energies", bp_energies);
  m.impl("bp_energies_from_positions", bp_energies_from_positions);
  m.impl("edge_r2", edge_r2);
}
