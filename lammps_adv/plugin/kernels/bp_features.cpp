// Fused Behler-Parrinello symmetry functions: lammps_adv::bp_features and its gradient.
//
// One pass over the edges of each centre atom computes its G2 (radial) and G4 (angular)
// features; a second pass, given dE/dG, accumulates dE/d(edge vector); a third (forward
// mode, for force training) gives the change of the features along a perturbation of the
// edge vectors. Centres are spread
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
// (256 triplets: its work arrays stay in L1) and at the end. Per triplet, one exp per distinct
// eta (of s: no per-edge exponentials to gather), the powers (1 + lambda cos)^zeta from one table
// of squarings per distinct lambda (factors folded into the weights, no copies for powers of
// two), and in the gradient pass the sums over the functions of one eta held in registers.
// The loops are written for SIMD (polynomial exp and cos accurate to a few ulp);
// CMakeLists.txt compiles them for AVX2 + FMA when the building CPU has them.
//
// Inputs: vec [E,3] float64 edge vectors (neighbour - centre), edges sorted by centre with
// offsets [n_centres + 1]; nbr_species [E] int64. CPU only; the model uses its pure-torch
// path on other devices (CUDA), so a GPU run needs no separate build.
#include <torch/torch.h>
#include <torch/library.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>


namespace {

using torch::Tensor;

// ----------------------------------------------------------------------------- parameters
struct Params {
  double rc = 0.0;
  int64_t S = 0, n_pairs = 0, R = 0, A = 0, n_features = 0;
  std::vector<double> radial_etas;
  std::vector<int64_t> pair_index;   // [S*S]
  std::vector<double> pair_weight;   // [S*S]
  // distinct angular eta values and (lambda, zeta) pairs, and which one each function uses
  std::vector<double> eta_u, lam_u, zeta_u, pref_u;
  std::vector<int> zeta_int_u;       // zeta as an integer power, -1 when not integral
  std::vector<int> eta_of, lz_of;
  // the powers (1 + lambda cos)^(2^q) are shared by every (lambda, zeta) of one lambda:
  // distinct lambdas, which one each (lambda, zeta) uses, and the highest q each needs
  std::vector<double> lam_g;
  std::vector<int> g_of, q_max;
};

// The highest bit of an integer power (0 for 1), i.e. the squarings it needs.
int top_bit(int k) {
  int q = 0;
  while ((k >> (q + 1)) > 0) ++q;
  return q;
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
      p.pref_u.push_back(std::pow(2.0, 1.0 - zeta[m]));
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
  }
  return p;
}

// ----------------------------------------------------------------------------- math
// exp(x): x = n ln2 + r, |r| <= ln2/2, e^r by its Taylor series to r^13 (error < 2e-16
// relative), 2^n from the exponent bits. Clamped to [-708, 708] (normal doubles).
static inline double exp_poly(double x) {
  x = std::min(std::max(x, -708.0), 708.0);
  const double shift = 6755399441055744.0;               // 1.5 * 2^52: rounds to integer
  const double t = x * 1.4426950408889634 + shift;
  const double n = t - shift;
  const double r = (x - n * 0.6931471803691238) - n * 1.9082149292705877e-10;
  double q = 1.0 / 6227020800.0;                          // 1/13!
  q = q * r + 1.0 / 479001600.0;
  q = q * r + 1.0 / 39916800.0;
  q = q * r + 1.0 / 3628800.0;
  q = q * r + 1.0 / 362880.0;
  q = q * r + 1.0 / 40320.0;
  q = q * r + 1.0 / 5040.0;
  q = q * r + 1.0 / 720.0;
  q = q * r + 1.0 / 120.0;
  q = q * r + 1.0 / 24.0;
  q = q * r + 1.0 / 6.0;
  q = q * r + 0.5;
  q = q * r + 1.0;
  q = q * r + 1.0;
  uint64_t bits;
  std::memcpy(&bits, &t, sizeof bits);
  bits = (bits + 1023u) << 52;                            // (n + 1023) << 52 = 2^n
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return q * scale;
}

// cos(z) and sin(z) for z in [0, pi/2] by Taylor series (error < 1e-16)
static inline double cos_poly(double z) {
  const double z2 = z * z;
  double q = 1.0 / 2432902008176640000.0;                 // 1/20!
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

static inline double sin_poly(double z) {
  const double z2 = z * z;
  double q = -1.0 / 51090942171709440000.0;               // -1/21!
  q = q * z2 + 1.0 / 121645100408832000.0;
  q = q * z2 - 1.0 / 355687428096000.0;
  q = q * z2 + 1.0 / 1307674368000.0;
  q = q * z2 - 1.0 / 6227020800.0;
  q = q * z2 + 1.0 / 39916800.0;
  q = q * z2 - 1.0 / 362880.0;
  q = q * z2 + 1.0 / 5040.0;
  q = q * z2 - 1.0 / 120.0;
  q = q * z2 + 1.0 / 6.0;
  return z * (1.0 - z2 * q);
}

// fc(r) = 0.5 (cos(pi r / rc) + 1) = cos^2(h), h = pi r / (2 rc) in [0, pi/2) inside the
// cutoff; fc'(r) = -(pi / rc) sin(h) cos(h)
static inline double fc_of(double r, double half_k) {
  const double c = cos_poly(half_k * r);
  return c * c;
}

static inline double dfc_of(double r, double half_k) {
  const double h = half_k * r;
  return -2.0 * half_k * sin_poly(h) * cos_poly(h);
}

// ----------------------------------------------------------------------------- one centre
// The triplets (j, k > j, r_jk < rc) of one centre whose first edges j have one species and
// whose partners k have one species: one output row, one pair weight. Filled first edge by
// first edge with what needs only the two edge vectors, then processed in long loops.
struct Triplets {
  int64_t L = 0;
  std::vector<int64_t> j, k;           // edges, in the block's order
  std::vector<double> r3, cs, s, w0;   // r_jk^2 (r_jk once processed with grad), cos theta,
                                       // r_ij^2 + r_ik^2 + r_jk^2, fc(r_ij) fc(r_ik)
  void resize(int64_t cap) {
    for (auto* v : {&j, &k}) v->resize(cap);
    for (auto* v : {&r3, &cs, &s, &w0}) v->resize(cap);
  }
};

// Work arrays of one set of triplets being processed, [cap] or [distinct values][cap].
struct Work {
  std::vector<double> fc3, dfc3, w, xu, powers, ang, dang, dw, ds, dcos, ones;
  std::vector<double> gjx, gjy, gjz, gkx, gky, gkz;
  // per distinct (lambda, zeta) l: A_l = a_fac[l] * a_ptr[l][i], dA_l/dcos = d_fac[l] *
  // d_ptr[l][i]; the arrays are squarings of (1 + lambda cos), products of them, or ones
  std::vector<const double*> a_ptr, d_ptr;
  std::vector<double> a_fac, d_fac;

  void resize(const Params& p, int64_t cap) {
    for (auto* v : {&fc3, &dfc3, &w, &dw, &ds, &dcos, &gjx, &gjy, &gjz, &gkx, &gky, &gkz})
      v->resize(cap);
    ones.assign(cap, 1.0);
    int qmax = 0;
    for (int q : p.q_max) qmax = std::max(qmax, q);
    xu.resize(p.eta_u.size() * cap);
    ang.resize(p.lam_u.size() * cap);
    dang.resize(p.lam_u.size() * cap);
    powers.resize(p.lam_g.size() * (qmax + 1) * cap);
    for (auto* v : {&a_ptr, &d_ptr}) v->resize(p.lam_u.size());
    for (auto* v : {&a_fac, &d_fac}) v->resize(p.lam_u.size());
  }
};

// The edges of one centre in arrays ordered by neighbour species, its triplet sets and the
// work arrays. One per thread, reused from centre to centre.
struct Block {
  static constexpr int64_t kMinCapacity = 256;   // triplets per set before it is processed
  int64_t n = 0, cap = 0;
  std::vector<int64_t> edge, sp, start;                // original edge, species, [S+1] ranges
  std::vector<double> x, y, z, r2, inv_r, fc, dfc, lfc;   // lfc = fc'(r) / (fc(r) r)
  std::vector<double> gx, gy, gz;                      // dE/d(edge vector), this block
  std::vector<double> d2, dot;                         // one first edge's candidates
  std::vector<int64_t> fill;                           // species slots while loading
  std::vector<double> ux, uy, uz, vu;                  // jvp: edge perturbation u, v . u
  std::vector<Triplets> sets;                          // [S * S]: (species of j, of k)
  Work work;

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
    for (auto* vv : {&x, &y, &z, &r2, &inv_r, &fc, &dfc, &lfc, &gx, &gy, &gz, &d2, &dot})
      vv->assign(n, 0.0);
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
    const int64_t want = std::max(kMinCapacity, n);
    if (want > cap || sets.size() != size_t(p.S * p.S)) {
      cap = std::max(want, cap);
      sets.resize(p.S * p.S);
      for (auto& t : sets) t.resize(cap);
      work.resize(p, cap);
    }
    for (auto& t : sets) t.L = 0;
  }

  // Every triplet of the centre, handed to process(sa, sb, set) one set at a time: when a set
  // could not take the next first edge's partners, and at the end.
  template <class Process>
  void each_triplet_set(const Params& p, Process&& process) {
    const double rc2 = p.rc * p.rc;
    for (int64_t a = 0; a + 1 < n; ++a) {
      const int64_t sa = sp[a];
      const double xa = x[a], ya = y[a], za = z[a], ia = inv_r[a], r2a = r2[a], fa = fc[a];
      for (int64_t sb = sa; sb < p.S; ++sb) {      // partners k > j: species >= sa
        const int64_t b0 = std::max(a + 1, start[sb]), m = start[sb + 1] - b0;
        if (m <= 0) continue;
        Triplets& T = sets[sa * p.S + sb];
        if (T.L + m > cap) {
          process(sa, sb, T);
          T.L = 0;
        }
        double* __restrict dd = d2.data();
        double* __restrict dp = dot.data();
        const double *__restrict xb = x.data() + b0, *__restrict yb = y.data() + b0,
                     *__restrict zb = z.data() + b0;
#pragma omp simd
        for (int64_t t = 0; t < m; ++t) {
          const double dx = xb[t] - xa, dy = yb[t] - ya, dz = zb[t] - za;
          dd[t] = dx * dx + dy * dy + dz * dz;
          dp[t] = xa * xb[t] + ya * yb[t] + za * zb[t];
        }
        int64_t L = T.L;
        for (int64_t t = 0; t < m; ++t) {          // branch-free compaction
          const int64_t b = b0 + t;
          const double cv = dp[t] * ia * inv_r[b];
          T.k[L] = b;
          T.r3[L] = dd[t];
          T.cs[L] = cv < -1.0 ? -1.0 : (cv > 1.0 ? 1.0 : cv);
          T.s[L] = r2a + r2[b] + dd[t];
          T.w0[L] = fa * fc[b];
          L += dd[t] < rc2;
        }
        std::fill(T.j.begin() + T.L, T.j.begin() + L, a);
        T.L = L;
      }
    }
    for (int64_t sa = 0; sa < p.S; ++sa)
      for (int64_t sb = 0; sb < p.S; ++sb) {
        Triplets& T = sets[sa * p.S + sb];
        if (T.L > 0) process(sa, sb, T);
        T.L = 0;
      }
  }
};

// base^k from the table of squarings base^(2^q) (stride apart): the table row itself when k
// is a power of two, ones for k = 0, else the product written to out.
const double* power_of(int k, const double* powers, int64_t stride, const double* ones,
                       double* __restrict out, int64_t L) {
  if (k == 0) return ones;
  int q = 0;
  while (!((k >> q) & 1)) ++q;
  const double* first = powers + q * stride;
  if ((k >> (q + 1)) == 0) return first;
  std::copy(first, first + L, out);
  for (++q; (k >> q) > 0; ++q) {
    if (!((k >> q) & 1)) continue;
    const double* __restrict pq = powers + q * stride;
#pragma omp simd
    for (int64_t i = 0; i < L; ++i) out[i] *= pq[i];
  }
  return out;
}

// Per triplet of a set: fc(r_jk), X_u = fc(r_ij) fc(r_ik) fc(r_jk) exp(-eta_u s) per distinct
// eta, A_l = 2^(1-zeta) (1 + lambda cos)^zeta and dA_l/dcos per distinct (lambda, zeta); integer
// zetas from one table of squarings (1 + lambda cos)^(2^q) per distinct lambda. With grad: r3
// becomes r_jk and dfc3 = fc'(r_jk).
void triplet_terms(const Params& p, Triplets& T, Work& W, int64_t cap, bool grad) {
  const int64_t L = T.L;
  const double half_k = 0.5 * M_PI / p.rc;
  double *__restrict r3 = T.r3.data(), *__restrict f3 = W.fc3.data(), *__restrict w = W.w.data();
  const double *__restrict w0 = T.w0.data(), *__restrict sv = T.s.data(), *__restrict cs = T.cs.data();
#pragma omp simd
  for (int64_t i = 0; i < L; ++i) {
    const double f = fc_of(std::sqrt(r3[i]), half_k);
    f3[i] = f;
    w[i] = w0[i] * f;
  }
  if (grad) {
    double* __restrict df3 = W.dfc3.data();
#pragma omp simd
    for (int64_t i = 0; i < L; ++i) {
      const double d = std::sqrt(r3[i]);
      r3[i] = d;
      df3[i] = dfc_of(d, half_k);
    }
  }
  for (size_t u = 0; u < p.eta_u.size(); ++u) {
    const double eta = p.eta_u[u];
    double* __restrict xv = W.xu.data() + u * cap;
#pragma omp simd
    for (int64_t i = 0; i < L; ++i) xv[i] = w[i] * exp_poly(-eta * sv[i]);
  }
  int qmax = 0;
  for (int q : p.q_max) qmax = std::max(qmax, q);
  for (size_t g = 0; g < p.lam_g.size(); ++g) {
    const double lam = p.lam_g[g];
    double* table = W.powers.data() + g * (qmax + 1) * cap;
    double* __restrict p0 = table;
#pragma omp simd
    for (int64_t i = 0; i < L; ++i) p0[i] = 1.0 + lam * cs[i];
    for (int q = 1; q <= p.q_max[g]; ++q) {
      const double* __restrict lo = table + (q - 1) * cap;
      double* __restrict hi = table + q * cap;
#pragma omp simd
      for (int64_t i = 0; i < L; ++i) hi[i] = lo[i] * lo[i];
    }
    for (size_t l = 0; l < p.lam_u.size(); ++l) {
      if (p.g_of[l] != int(g)) continue;
      const double pref = p.pref_u[l], zeta = p.zeta_u[l];
      double* __restrict al = W.ang.data() + l * cap;
      double* __restrict dl = W.dang.data() + l * cap;
      const int k = p.zeta_int_u[l];
      W.a_fac[l] = pref;
      W.d_fac[l] = pref * zeta * lam;
      if (k > 0) {
        W.a_ptr[l] = power_of(k, table, cap, W.ones.data(), al, L);
        W.d_ptr[l] = power_of(k - 1, table, cap, W.ones.data(), dl, L);
      } else {
        for (int64_t i = 0; i < L; ++i) {
          al[i] = std::pow(p0[i], zeta);
          dl[i] = std::pow(p0[i], zeta - 1.0);
        }
        W.a_ptr[l] = al;
        W.d_ptr[l] = dl;
      }
    }
  }
}

// d/dv [exp(-eta r^2) fc(r)] = radial_slope v for edge a: exp(-eta r^2) (fc'(r) / r - 2 eta fc)
static inline double radial_slope(double eta, const Block& B, int64_t a) {
  return exp_poly(-eta * B.r2[a]) * (B.dfc[a] * B.inv_r[a] - 2.0 * eta * B.fc[a]);
}

// The G4 row of a set (pair weight pw): row[k] += pw * sum_i A_l(k) X_u(k)
void forward_set(const Params& p, Block& B, Triplets& T, double* row, double pw) {
  triplet_terms(p, T, B.work, B.cap, false);
  const int64_t L = T.L;
  for (int64_t k = 0; k < p.A; ++k) {
    const double* __restrict al = B.work.a_ptr[p.lz_of[k]];
    const double* __restrict xv = B.work.xu.data() + p.eta_of[k] * B.cap;
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < L; ++i) acc += al[i] * xv[i];
    row[k] += pw * B.work.a_fac[p.lz_of[k]] * acc;
  }
}

void forward_centre(const Params& p, Block& B, double* g) {
  const int64_t n = B.n, S = p.S, R = p.R;
  double* g4 = g + S * R;
  for (int64_t a = 0; a < n; ++a) {
    double* row = g + B.sp[a] * R;
    for (int64_t k = 0; k < R; ++k) row[k] += exp_poly(-p.radial_etas[k] * B.r2[a]) * B.fc[a];
  }
  B.each_triplet_set(p, [&](int64_t sa, int64_t sb, Triplets& T) {
    forward_set(p, B, T, g4 + p.pair_index[sa * S + sb] * p.A, p.pair_weight[sa * S + sb]);
  });
}

// For the C functions of one eta: Y = sum_f wa_f A_f, D = sum_f wd_f dA_f/dcos per triplet,
// then d/dlog(w) += X Y, d/ds -= eta X Y, d/dcos += X D.
template <int C>
inline void add_eta_terms(int64_t L, const double* const* ap, const double* const* dp,
                          const double* wa, const double* wd, const double* __restrict xv,
                          double eta, double* __restrict dw, double* __restrict ds,
                          double* __restrict dc) {
  const double* a[C];
  const double* d[C];
  for (int f = 0; f < C; ++f) { a[f] = ap[f]; d[f] = dp[f]; }
#pragma omp simd
  for (int64_t i = 0; i < L; ++i) {
    double y = 0.0, dd = 0.0;
    for (int f = 0; f < C; ++f) {
      y += wa[f] * a[f][i];
      dd += wd[f] * d[f][i];
    }
    const double xy = xv[i] * y;
    dw[i] += xy;             // the derivative with respect to log w
    ds[i] -= eta * xy;
    dc[i] += xv[i] * dd;
  }
}

// dE/d(edge vectors) of a set, given the weights wrow = dE/dG of its row (pair weight pw).
// Per triplet: d/dcos, d/ds and d/dlog(w) of sum_k W_k A_l(k) X_u(k), via Y_u = sum_{k: eta_k
// = u} W_k A_l(k) and D_u = sum_{k: eta_k = u} W_k dA_l(k)/dcos; then the chain rule to the
// two edge vectors, added to the block's gradient rows.
void backward_set(const Params& p, Block& B, Triplets& T, const double* wrow, double pw) {
  Work& W = B.work;
  triplet_terms(p, T, W, B.cap, true);
  const int64_t L = T.L, cap = B.cap;
  double *__restrict dwp = W.dw.data(), *__restrict dsp = W.ds.data(), *__restrict dcp = W.dcos.data();
  // the functions grouped by eta, with their weights (pair weight and A/dA factors folded in)
  const int64_t nu = int64_t(p.eta_u.size());
  int64_t first[17] = {0}, nf = 0;
  const double* ap[64];
  const double* dpp[64];
  double wa[64], wd[64];
  TORCH_CHECK(nu <= 16 && p.A <= 64, "bp_features: at most 16 angular etas and 64 functions");
  for (int64_t u = 0; u < nu; ++u) {
    first[u] = nf;
    for (int64_t k = 0; k < p.A; ++k) {
      if (p.eta_of[k] != int(u)) continue;
      const int l = p.lz_of[k];
      ap[nf] = W.a_ptr[l];
      dpp[nf] = W.d_ptr[l];
      wa[nf] = wrow[k] * pw * W.a_fac[l];
      wd[nf] = wrow[k] * pw * W.d_fac[l];
      ++nf;
    }
  }
  first[nu] = nf;
  std::fill(dwp, dwp + L, 0.0);
  std::fill(dsp, dsp + L, 0.0);
  std::fill(dcp, dcp + L, 0.0);
  for (int64_t u = 0; u < nu; ++u) {
    const int64_t f0 = first[u], nfu = first[u + 1] - f0;
    const double* xv = W.xu.data() + u * cap;
    switch (nfu) {   // a fixed count keeps Y_u and D_u in registers
      case 0: break;
      case 1: add_eta_terms<1>(L, ap + f0, dpp + f0, wa + f0, wd + f0, xv, p.eta_u[u], dwp, dsp, dcp); break;
      case 2: add_eta_terms<2>(L, ap + f0, dpp + f0, wa + f0, wd + f0, xv, p.eta_u[u], dwp, dsp, dcp); break;
      case 3: add_eta_terms<3>(L, ap + f0, dpp + f0, wa + f0, wd + f0, xv, p.eta_u[u], dwp, dsp, dcp); break;
      case 4: add_eta_terms<4>(L, ap + f0, dpp + f0, wa + f0, wd + f0, xv, p.eta_u[u], dwp, dsp, dcp); break;
      default:
        for (int64_t f = f0; f < f0 + nfu; f += 4) {
          const int64_t c = std::min<int64_t>(4, f0 + nfu - f);
          // chunks of at most 4 functions of one eta: the sums are linear in the functions
          if (c == 4) add_eta_terms<4>(L, ap + f, dpp + f, wa + f, wd + f, xv, p.eta_u[u], dwp, dsp, dcp);
          else if (c == 3) add_eta_terms<3>(L, ap + f, dpp + f, wa + f, wd + f, xv, p.eta_u[u], dwp, dsp, dcp);
          else if (c == 2) add_eta_terms<2>(L, ap + f, dpp + f, wa + f, wd + f, xv, p.eta_u[u], dwp, dsp, dcp);
          else add_eta_terms<1>(L, ap + f, dpp + f, wa + f, wd + f, xv, p.eta_u[u], dwp, dsp, dcp);
        }
    }
  }
  const int64_t *__restrict tj = T.j.data(), *__restrict tk = T.k.data();
  const double *__restrict x = B.x.data(), *__restrict y = B.y.data(), *__restrict z = B.z.data();
  const double *__restrict r2 = B.r2.data(), *__restrict inv = B.inv_r.data(), *__restrict lfc = B.lfc.data();
  const double *__restrict r3 = T.r3.data(), *__restrict cs = T.cs.data();
  const double *__restrict f3 = W.fc3.data(), *__restrict df3 = W.dfc3.data();
  double *__restrict gjx = W.gjx.data(), *__restrict gjy = W.gjy.data(), *__restrict gjz = W.gjz.data();
  double *__restrict gkx = W.gkx.data(), *__restrict gky = W.gky.data(), *__restrict gkz = W.gkz.data();
#pragma omp simd
  for (int64_t i = 0; i < L; ++i) {
    const int64_t j = tj[i], k = tk[i];
    const double xj = x[j], yj = y[j], zj = z[j], xk = x[k], yk = y[k], zk = z[k];
    const double d_cos = dcp[i], d_s = dsp[i], xw = dwp[i], ijk = inv[j] * inv[k];
    const double c3 = r3[i] > 0.0 ? xw * df3[i] / f3[i] / r3[i] : 0.0;
    const double q1 = 2.0 * d_s + xw * lfc[j], q2 = 2.0 * d_s + xw * lfc[k], q3 = 2.0 * d_s + c3;
    const double cc1 = cs[i] / r2[j], cc2 = cs[i] / r2[k];
    const double dx = xk - xj, dy = yk - yj, dz = zk - zj;
    gjx[i] = d_cos * (xk * ijk - xj * cc1) + q1 * xj - q3 * dx;
    gjy[i] = d_cos * (yk * ijk - yj * cc1) + q1 * yj - q3 * dy;
    gjz[i] = d_cos * (zk * ijk - zj * cc1) + q1 * zj - q3 * dz;
    gkx[i] = d_cos * (xj * ijk - xk * cc2) + q2 * xk + q3 * dx;
    gky[i] = d_cos * (yj * ijk - yk * cc2) + q2 * yk + q3 * dy;
    gkz[i] = d_cos * (zj * ijk - zk * cc2) + q2 * zk + q3 * dz;
  }
  for (int64_t i = 0; i < L; ++i) {
    const int64_t j = tj[i], k = tk[i];
    B.gx[j] += gjx[i]; B.gy[j] += gjy[i]; B.gz[j] += gjz[i];
    B.gx[k] += gkx[i]; B.gy[k] += gky[i]; B.gz[k] += gkz[i];
  }
}

void backward_centre(const Params& p, Block& B, const double* wgt) {
  const int64_t n = B.n, S = p.S, R = p.R;
  const double* w4 = wgt + S * R;
  // radial: d/dv [exp(-eta r^2) fc(r)] = radial_slope v
  for (int64_t a = 0; a < n; ++a) {
    const double* row = wgt + B.sp[a] * R;
    double c = 0.0;
    for (int64_t k = 0; k < R; ++k) c += row[k] * radial_slope(p.radial_etas[k], B, a);
    B.gx[a] += c * B.x[a];
    B.gy[a] += c * B.y[a];
    B.gz[a] += c * B.z[a];
  }
  B.each_triplet_set(p, [&](int64_t sa, int64_t sb, Triplets& T) {
    backward_set(p, B, T, w4 + p.pair_index[sa * S + sb] * p.A, p.pair_weight[sa * S + sb]);
  });
}

// Forward mode: dG = sum_e dG/dv_e . u_e for a perturbation u of the edge vectors. Force
// training needs it: the forces are J^T dE/dG, so the loss reaches dE/dG (and the weights)
// through J u, with u = dLoss/d(edge vectors). Per triplet: the change of cos theta, of s and
// of log w (w = fc(r_ij) fc(r_ik) fc(r_jk)).
void jvp_set(const Params& p, Block& B, Triplets& T, double* row, double pw) {
  Work& W = B.work;
  triplet_terms(p, T, W, B.cap, true);
  const int64_t L = T.L, cap = B.cap;
  double *__restrict dcp = W.dcos.data(), *__restrict dsp = W.ds.data(), *__restrict dlw = W.dw.data();
  for (int64_t i = 0; i < L; ++i) {
    const int64_t j = T.j[i], k = T.k[i];
    const double ddu = (B.x[k] - B.x[j]) * (B.ux[k] - B.ux[j]) +
                       (B.y[k] - B.y[j]) * (B.uy[k] - B.uy[j]) +
                       (B.z[k] - B.z[j]) * (B.uz[k] - B.uz[j]);
    const double cross = B.x[j] * B.ux[k] + B.y[j] * B.uy[k] + B.z[j] * B.uz[k] +
                         B.x[k] * B.ux[j] + B.y[k] * B.uy[j] + B.z[k] * B.uz[j];
    dcp[i] = cross * B.inv_r[j] * B.inv_r[k] - T.cs[i] * (B.vu[j] / B.r2[j] + B.vu[k] / B.r2[k]);
    dsp[i] = 2.0 * (B.vu[j] + B.vu[k] + ddu);
    dlw[i] = B.lfc[j] * B.vu[j] + B.lfc[k] * B.vu[k] +
             (T.r3[i] > 0.0 ? W.dfc3[i] / W.fc3[i] / T.r3[i] * ddu : 0.0);
  }
  for (int64_t k = 0; k < p.A; ++k) {
    const double eta = p.eta_u[p.eta_of[k]];
    const int l = p.lz_of[k];
    const double* __restrict al = W.a_ptr[l];
    const double* __restrict dl = W.d_ptr[l];
    const double* __restrict xv = W.xu.data() + p.eta_of[k] * cap;
    const double fa = W.a_fac[l], fd = W.d_fac[l];
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < L; ++i)
      acc += xv[i] * (fd * dl[i] * dcp[i] + fa * al[i] * (dlw[i] - eta * dsp[i]));
    row[k] += pw * acc;
  }
}

void jvp_centre(const Params& p, Block& B, double* dg) {
  const int64_t n = B.n, S = p.S, R = p.R;
  double* dg4 = dg + S * R;
  for (int64_t a = 0; a < n; ++a) {
    double* row = dg + B.sp[a] * R;
    for (int64_t k = 0; k < R; ++k) row[k] += radial_slope(p.radial_etas[k], B, a) * B.vu[a];
  }
  B.each_triplet_set(p, [&](int64_t sa, int64_t sb, Triplets& T) {
    jvp_set(p, B, T, dg4 + p.pair_index[sa * S + sb] * p.A, p.pair_weight[sa * S + sb]);
  });
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

}  // namespace

TORCH_LIBRARY(lammps_adv, m) {
  m.def("bp_features(Tensor vec, Tensor offsets, Tensor nbr_species, Tensor radial_etas, "
        "Tensor angular_etas, Tensor lambdas, Tensor zetas, Tensor pair_index, "
        "Tensor pair_weight, float cutoff) -> Tensor");
}

TORCH_LIBRARY_IMPL(lammps_adv, CompositeImplicitAutograd, m) {
  m.impl("bp_features", bp_features_autograd);
}
