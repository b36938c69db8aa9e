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
// Speed: the edges of a centre are copied into arrays ordered by neighbour species, so that
// for a first edge j the partners k of one species form a contiguous range sharing one
// output row; the loops over k are written for SIMD (polynomial exp and cos accurate to a
// few ulp, integer powers by squaring); CMakeLists.txt compiles them for AVX2 + FMA when the
// building CPU has them.
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
};

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
  return p;
}

// ----------------------------------------------------------------------------- math
// exp(x): x = n ln2 + r, |r| <= ln2/2, e^r by its Taylor series to r^13 (error < 2e-16
// relative), 2^n from the exponent bits. Clamped to [-708, 708] (normal doubles).
static inline double exp_poly(double x) {
  x = x < -708.0 ? -708.0 : (x > 708.0 ? 708.0 : x);
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
// The edges of one centre in arrays ordered by neighbour species, and the work arrays of
// one first edge's partners. One per thread, reused from centre to centre.
struct Block {
  int64_t n = 0;
  std::vector<int64_t> edge, sp, start;                // original edge, species, [S+1] ranges
  std::vector<double> x, y, z, r2, r, inv_r, fc, dfc, ex;   // ex: [nu][n] exp(-eta_u r^2)
  std::vector<double> gx, gy, gz;                      // dE/d(edge vector), this block
  // partners of the current first edge inside the cutoff of r_jk ("kept"), compacted
  int64_t c = 0;
  std::vector<int64_t> kept, seg;                      // seg: [S+1] species ranges in kept
  std::vector<double> kx, ky, kz, kr2, kinv, kfc, kdfc, kex;
  std::vector<double> fc3, dfc3, r3, cs, base, ang, dang, xu, scratch, dw, ds, dcos, yu, du;
  std::vector<double> gkx, gky, gkz;                   // dE/d(partner edge vector)
  std::vector<int64_t> fill;                           // species slots while loading
  std::vector<double> ux, uy, uz, vu;                  // jvp: edge perturbation u, v . u

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
    const size_t nu = p.eta_u.size(), nl = p.lam_u.size();
    start.assign(p.S + 1, 0);
    for (int64_t a = 0; a < n; ++a) start[species[e0 + a] + 1]++;
    for (int64_t s = 0; s < p.S; ++s) start[s + 1] += start[s];
    fill.assign(start.begin(), start.end() - 1);
    for (auto* vv : {&x, &y, &z, &r2, &r, &inv_r, &fc, &dfc, &gx, &gy, &gz}) vv->assign(n, 0.0);
    edge.resize(n);
    sp.resize(n);
    ex.resize(nu * n);
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
      r[i] = std::sqrt(r2[i]);
      inv_r[i] = 1.0 / r[i];
      fc[i] = fc_of(r[i], half_k);
      dfc[i] = dfc_of(r[i], half_k);
    }
    for (size_t u = 0; u < nu; ++u) {
      const double eta = p.eta_u[u];
      double* __restrict e = ex.data() + u * n;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) e[i] = exp_poly(-eta * r2[i]);
    }
    const size_t m = size_t(n);
    kept.resize(m);
    seg.resize(p.S + 1);
    for (auto* vv : {&kx, &ky, &kz, &kr2, &kinv, &kfc, &kdfc, &fc3, &dfc3, &r3, &cs, &base,
                     &scratch, &dw, &ds, &dcos, &yu, &du, &gkx, &gky, &gkz})
      vv->resize(m);
    kex.resize(nu * m);
    xu.resize(nu * m);
    ang.resize(nl * m);
    dang.resize(nl * m);
  }

  // The partners k > j of first edge j = a with r_jk < rc, compacted (in species order) with
  // their edge data, and per partner: fc(r_jk), cos theta, 2^(1-zeta) (1 + lambda cos)^zeta
  // (and d/dcos) per distinct (lambda, zeta), and fc(r_ij) fc(r_ik) fc(r_jk)
  // exp(-eta (r_ij^2 + r_ik^2 + r_jk^2)) per distinct eta. With grad: also r_jk, fc'(r_jk).
  void partners(const Params& p, int64_t a, bool grad) {
    const size_t nu = p.eta_u.size(), nl = p.lam_u.size();
    const double rc2 = p.rc * p.rc, half_k = 0.5 * M_PI / p.rc;
    const double xa = x[a], ya = y[a], za = z[a], ia = inv_r[a];
    const int64_t b0 = a + 1, m = n - b0;
    double* __restrict d2 = scratch.data();
#pragma omp simd
    for (int64_t t = 0; t < m; ++t) {
      const double dx = x[b0 + t] - xa, dy = y[b0 + t] - ya, dz = z[b0 + t] - za;
      d2[t] = dx * dx + dy * dy + dz * dz;
    }
    c = 0;
    for (int64_t t = 0; t < m; ++t) {     // branch-free compaction
      kept[c] = b0 + t;
      r3[c] = d2[t];
      c += d2[t] < rc2;
    }
    for (int64_t s = 0, i = 0; s <= p.S; ++s) {
      while (i < c && kept[i] < start[s]) ++i;
      seg[s] = s == p.S ? c : i;
    }
    for (int64_t i = 0; i < c; ++i) {
      const int64_t b = kept[i];
      kx[i] = x[b]; ky[i] = y[b]; kz[i] = z[b];
      kr2[i] = r2[b]; kinv[i] = inv_r[b]; kfc[i] = fc[b]; kdfc[i] = dfc[b];
    }
    for (size_t u = 0; u < nu; ++u)
      for (int64_t i = 0; i < c; ++i) kex[u * m + i] = ex[u * n + kept[i]];
#pragma omp simd
    for (int64_t i = 0; i < c; ++i) {
      const double d = std::sqrt(r3[i]);
      fc3[i] = fc_of(d, half_k);
      const double cv = (xa * kx[i] + ya * ky[i] + za * kz[i]) * ia * kinv[i];
      cs[i] = cv < -1.0 ? -1.0 : (cv > 1.0 ? 1.0 : cv);
    }
    const double fa = fc[a];
    for (size_t u = 0; u < nu; ++u) {
      const double eta = p.eta_u[u], ea = ex[u * n + a] * fa;
      const double* __restrict eb = kex.data() + u * m;
      double* __restrict xv = xu.data() + u * m;
#pragma omp simd
      for (int64_t i = 0; i < c; ++i) xv[i] = ea * eb[i] * kfc[i] * fc3[i] * exp_poly(-eta * r3[i]);
    }
    if (grad) {
#pragma omp simd
      for (int64_t i = 0; i < c; ++i) {
        const double d = std::sqrt(r3[i]);
        r3[i] = d;
        dfc3[i] = dfc_of(d, half_k);
      }
    }
    for (size_t l = 0; l < nl; ++l) {
      const double lam = p.lam_u[l], pref = p.pref_u[l], zeta = p.zeta_u[l];
      double* __restrict bs = base.data();
      double* __restrict al = ang.data() + l * m;
      double* __restrict dl = dang.data() + l * m;
#pragma omp simd
      for (int64_t i = 0; i < c; ++i) bs[i] = 1.0 + lam * cs[i];
      const int k = p.zeta_int_u[l];
      if (k > 0) {   // base^(k-1) by squaring (6 bits, unrolled)
        const double dpref = pref * zeta * lam;
#pragma omp simd
        for (int64_t i = 0; i < c; ++i) {
          double sq = bs[i], pk = 1.0;
          for (int bit = 0; bit < 6; ++bit) {
            pk = ((k - 1) >> bit) & 1 ? pk * sq : pk;
            sq *= sq;
          }
          al[i] = pref * pk * bs[i];
          dl[i] = dpref * pk;
        }
      } else {
        for (int64_t i = 0; i < c; ++i) {
          al[i] = pref * std::pow(bs[i], zeta);
          dl[i] = pref * zeta * lam * std::pow(bs[i], zeta - 1.0);
        }
      }
    }
  }
};

// d/dv [exp(-eta r^2) fc(r)] = radial_slope v for edge a: exp(-eta r^2) (fc'(r) / r - 2 eta fc)
static inline double radial_slope(double eta, const Block& B, int64_t a) {
  return exp_poly(-eta * B.r2[a]) * (B.dfc[a] * B.inv_r[a] - 2.0 * eta * B.fc[a]);
}

// The angular rows of one first edge (centre species sa): for each species s of the partners
// (the contiguous range [i0, i1) of them) and each angular function k,
// row(sa, s)[k] += pair_weight(sa, s) * sum(k, i0, i1). Shared by the forward and jvp passes.
template <class Sum>
inline void add_angular(const Params& p, const Block& B, int64_t sa, double* g4, Sum&& sum) {
  for (int64_t s = 0; s < p.S; ++s) {
    const int64_t i0 = B.seg[s], i1 = B.seg[s + 1];
    if (i1 <= i0) continue;
    const double pw = p.pair_weight[sa * p.S + s];
    double* out = g4 + p.pair_index[sa * p.S + s] * p.A;
    for (int64_t k = 0; k < p.A; ++k) out[k] += pw * sum(k, i0, i1);
  }
}

void forward_centre(const Params& p, Block& B, double* g) {
  const int64_t n = B.n, S = p.S, R = p.R;
  double* g4 = g + S * R;
  for (int64_t a = 0; a < n; ++a) {
    double* row = g + B.sp[a] * R;
    for (int64_t k = 0; k < R; ++k) row[k] += exp_poly(-p.radial_etas[k] * B.r2[a]) * B.fc[a];
  }
  for (int64_t a = 0; a + 1 < n; ++a) {
    B.partners(p, a, false);
    const int64_t m = n - a - 1;
    add_angular(p, B, B.sp[a], g4, [&](int64_t k, int64_t i0, int64_t i1) {
      const double* __restrict al = B.ang.data() + p.lz_of[k] * m;
      const double* __restrict xv = B.xu.data() + p.eta_of[k] * m;
      double acc = 0.0;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = i0; i < i1; ++i) acc += al[i] * xv[i];
      return acc;
    });
  }
}

void backward_centre(const Params& p, Block& B, const double* wgt) {
  const int64_t n = B.n, S = p.S, R = p.R, A = p.A;
  const size_t nu = p.eta_u.size();
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
  for (int64_t a = 0; a + 1 < n; ++a) {
    B.partners(p, a, true);
    const int64_t m = n - a - 1, sa = B.sp[a], c = B.c;
    const double xa = B.x[a], ya = B.y[a], za = B.z[a];
    const double r1sq = B.r2[a], i1 = B.inv_r[a], f1 = B.fc[a], df1 = B.dfc[a];
    // per partner: d/dcos, d/dw and d/ds (s = r_ij^2 + r_ik^2 + r_jk^2) of
    // sum_k W_k A_l(k)(cos) X_u(k)(s) w, via Y_u = sum_{k: eta_k = u} W_k A_l(k) and
    // D_u = sum_{k: eta_k = u} W_k dA_l(k)/dcos (xu holds w X_u)
    double* __restrict dwp = B.dw.data();
    double* __restrict dsp = B.ds.data();
    double* __restrict dcp = B.dcos.data();
    double* __restrict yp = B.yu.data();
    double* __restrict dp = B.du.data();
#pragma omp simd
    for (int64_t i = 0; i < c; ++i) dwp[i] = dsp[i] = dcp[i] = 0.0;
    for (int64_t s = 0; s < S; ++s) {
      const int64_t i0 = B.seg[s], i1 = B.seg[s + 1];
      if (i1 <= i0) continue;
      const double pw = p.pair_weight[sa * S + s];
      const double* wrow = w4 + p.pair_index[sa * S + s] * A;
      for (size_t u = 0; u < nu; ++u) {
#pragma omp simd
        for (int64_t i = i0; i < i1; ++i) yp[i] = dp[i] = 0.0;
        for (int64_t k = 0; k < A; ++k) {
          if (p.eta_of[k] != int(u)) continue;
          const double wk = wrow[k] * pw;
          const double* __restrict al = B.ang.data() + p.lz_of[k] * m;
          const double* __restrict dl = B.dang.data() + p.lz_of[k] * m;
#pragma omp simd
          for (int64_t i = i0; i < i1; ++i) {
            yp[i] += wk * al[i];
            dp[i] += wk * dl[i];
          }
        }
        const double eta = p.eta_u[u];
        const double* __restrict xv = B.xu.data() + u * m;
#pragma omp simd
        for (int64_t i = i0; i < i1; ++i) {
          const double xy = xv[i] * yp[i];
          dwp[i] += xy;            // d/dw is sum W A X; xv carries w, divided out below
          dsp[i] -= eta * xy;
          dcp[i] += xv[i] * dp[i];
        }
      }
    }
    const double* __restrict kx = B.kx.data();
    const double* __restrict ky = B.ky.data();
    const double* __restrict kz = B.kz.data();
    const double* __restrict kr2 = B.kr2.data();
    const double* __restrict kinv = B.kinv.data();
    const double* __restrict kfc = B.kfc.data();
    const double* __restrict kdfc = B.kdfc.data();
    const double* __restrict f3 = B.fc3.data();
    const double* __restrict df3 = B.dfc3.data();
    const double* __restrict r3 = B.r3.data();
    const double* __restrict cs = B.cs.data();
    double* __restrict gxk = B.gkx.data();
    double* __restrict gyk = B.gky.data();
    double* __restrict gzk = B.gkz.data();
    double gxa = 0.0, gya = 0.0, gza = 0.0;
#pragma omp simd reduction(+ : gxa, gya, gza)
    for (int64_t i = 0; i < c; ++i) {
      // xv = w X with w = f1 f2 f3 (pair weight in the W above): d/dcos and d/ds are
      // complete; d/dw needs 1/w, taken as the derivative of log w times dwp
      const double d_cos = dcp[i], d_s = dsp[i], xw = dwp[i];
      const double i2 = kinv[i], i12 = i1 * i2;
      const double c1 = xw * df1 / f1 * i1;
      const double c2 = xw * kdfc[i] / kfc[i] * i2;
      const double c3 = r3[i] > 0.0 ? xw * df3[i] / f3[i] / r3[i] : 0.0;
      const double q1 = 2.0 * d_s + c1, q2 = 2.0 * d_s + c2, q3 = 2.0 * d_s + c3;
      const double cc1 = cs[i] / r1sq, cc2 = cs[i] / kr2[i];
      const double dx = kx[i] - xa, dy = ky[i] - ya, dz = kz[i] - za;
      gxa += d_cos * (kx[i] * i12 - xa * cc1) + q1 * xa - q3 * dx;
      gya += d_cos * (ky[i] * i12 - ya * cc1) + q1 * ya - q3 * dy;
      gza += d_cos * (kz[i] * i12 - za * cc1) + q1 * za - q3 * dz;
      gxk[i] = d_cos * (xa * i12 - kx[i] * cc2) + q2 * kx[i] + q3 * dx;
      gyk[i] = d_cos * (ya * i12 - ky[i] * cc2) + q2 * ky[i] + q3 * dy;
      gzk[i] = d_cos * (za * i12 - kz[i] * cc2) + q2 * kz[i] + q3 * dz;
    }
    for (int64_t i = 0; i < c; ++i) {
      const int64_t b = B.kept[i];
      B.gx[b] += gxk[i];
      B.gy[b] += gyk[i];
      B.gz[b] += gzk[i];
    }
    B.gx[a] += gxa;
    B.gy[a] += gya;
    B.gz[a] += gza;
  }
}

// Forward mode: dG = sum_e dG/dv_e . u_e for a perturbation u of the edge vectors. Force
// training needs it: the forces are J^T dE/dG, so the loss reaches dE/dG (and the weights)
// through J u, with u = dLoss/d(edge vectors).
void jvp_centre(const Params& p, Block& B, double* dg) {
  const int64_t n = B.n, S = p.S, R = p.R;
  double* dg4 = dg + S * R;
  for (int64_t a = 0; a < n; ++a) {
    double* row = dg + B.sp[a] * R;
    for (int64_t k = 0; k < R; ++k) row[k] += radial_slope(p.radial_etas[k], B, a) * B.vu[a];
  }
  for (int64_t a = 0; a + 1 < n; ++a) {
    B.partners(p, a, true);
    const int64_t m = n - a - 1, sa = B.sp[a], c = B.c;
    const double xa = B.x[a], ya = B.y[a], za = B.z[a];
    const double uxa = B.ux[a], uya = B.uy[a], uza = B.uz[a], vua = B.vu[a];
    const double r1sq = B.r2[a], i1 = B.inv_r[a], lw1 = B.dfc[a] / B.fc[a] * i1 * vua;
    // per partner: the change of cos theta, of s = r_ij^2 + r_ik^2 + r_jk^2 and of
    // log w (w = fc(r_ij) fc(r_ik) fc(r_jk))
    double* __restrict dcp = B.dcos.data();
    double* __restrict dsp = B.ds.data();
    double* __restrict dlw = B.dw.data();
    for (int64_t i = 0; i < c; ++i) {
      const int64_t b = B.kept[i];
      const double ubx = B.ux[b], uby = B.uy[b], ubz = B.uz[b], vub = B.vu[b];
      const double i2 = B.kinv[i];
      const double cross = xa * ubx + ya * uby + za * ubz + B.kx[i] * uxa + B.ky[i] * uya +
                           B.kz[i] * uza;
      const double ddu = (B.kx[i] - xa) * (ubx - uxa) + (B.ky[i] - ya) * (uby - uya) +
                         (B.kz[i] - za) * (ubz - uza);
      dcp[i] = cross * i1 * i2 - B.cs[i] * (vua / r1sq + vub / B.kr2[i]);
      dsp[i] = 2.0 * (vua + vub + ddu);
      dlw[i] = lw1 + B.kdfc[i] / B.kfc[i] * i2 * vub +
               (B.r3[i] > 0.0 ? B.dfc3[i] / B.fc3[i] / B.r3[i] * ddu : 0.0);
    }
    add_angular(p, B, sa, dg4, [&](int64_t k, int64_t i0, int64_t i1s) {
      const double eta = p.eta_u[p.eta_of[k]];
      const double* __restrict al = B.ang.data() + p.lz_of[k] * m;
      const double* __restrict dl = B.dang.data() + p.lz_of[k] * m;
      const double* __restrict xv = B.xu.data() + p.eta_of[k] * m;
      double acc = 0.0;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = i0; i < i1s; ++i)
        acc += xv[i] * (dl[i] * dcp[i] + al[i] * (dlw[i] - eta * dsp[i]));
      return acc;
    });
  }
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
