// Fused BKS-DSF pair terms: lammps_adv::bks_dsf_pairs and its gradient.
//
// For every edge, in one pass and in registers: r = |vec|, the pair's energy e(r) (Buckingham
// + r^-24 core + damped shifted force Coulomb) and de/dr. Returns half of e per edge (the
// centre's share); the gradient with respect to vec is (1/2) e'(r) vec / r, kept from the
// forward pass. Gathering positions into edge vectors and summing edges into atoms stay torch
// operations in the model (lammps_adv/models/bks_dsf.py), so the results do not depend on the
// number of threads and the formulas live next to their pure-torch twins there
// (short_range, dsf_coulomb), which the tests compare with this kernel.
//
// Inputs: vec [E,3] float64 (neighbour - centre), pair_type [E] int64 (a * n_species + b),
// params [n_species^2, 5] float64 rows (A, 1/rho, C, D, q_a q_b qqrd2e); alpha, e_shift,
// f_shift and sqrt_pi of the model; lammps_erfc picks LAMMPS' polynomial erfc, whose
// coefficients (P, A1..A5) the model passes in erfc. CPU only.
#include <torch/torch.h>
#include <torch/library.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <vector>

namespace {

using torch::Tensor;

struct Coulomb {
  double alpha, e_shift, f_shift, two_alpha_over_sqrt_pi;
  bool lammps_erfc;
  double p, a1, a2, a3, a4, a5;
};

// e(r) and de/dr of one pair; the same operations as short_range + dsf_coulomb in the model
inline void pair_terms(double r, const double* prm, const Coulomb& c, double& e, double& de) {
  const double a = prm[0], inv_rho = prm[1], cc = prm[2], dd = prm[3], qq = prm[4];
  const double born = a * std::exp(-r * inv_rho);
  const double inv_r = 1.0 / r;
  double inv_r6 = inv_r * inv_r * inv_r;
  inv_r6 = inv_r6 * inv_r6;
  const double core = dd * (inv_r6 * inv_r6) * (inv_r6 * inv_r6);
  const double disp = cc * inv_r6;
  const double gauss = std::exp(-c.alpha * c.alpha * r * r);
  double erfc;
  if (c.lammps_erfc) {
    const double t = 1.0 / (1.0 + c.p * c.alpha * r);
    erfc = t * (c.a1 + t * (c.a2 + t * (c.a3 + t * (c.a4 + t * c.a5)))) * gauss;
  } else {
    erfc = std::erfc(c.alpha * r);
  }
  e = (born + disp + core) + qq * (erfc * inv_r - c.e_shift - c.f_shift * r);
  de = (-inv_rho * born - inv_r * (6.0 * disp + 24.0 * core)) -
       qq * ((erfc * inv_r + c.two_alpha_over_sqrt_pi * gauss) * inv_r + c.f_shift);
}

void check_inputs(const Tensor& vec, const Tensor& pair_type, const Tensor& params,
                  c10::ArrayRef<double> erfc) {
  TORCH_CHECK(vec.device().is_cpu(), "bks_dsf_pairs runs on CPU tensors only");
  TORCH_CHECK(vec.dim() == 2 && vec.size(1) == 3 && vec.scalar_type() == torch::kFloat64,
              "bks_dsf_pairs: vec must be a float64 [E, 3] tensor");
  TORCH_CHECK(pair_type.dim() == 1 && pair_type.size(0) == vec.size(0) &&
              pair_type.scalar_type() == torch::kInt64,
              "bks_dsf_pairs: pair_type must be an int64 [E] tensor");
  TORCH_CHECK(params.dim() == 2 && params.size(1) == 5 && params.scalar_type() == torch::kFloat64,
              "bks_dsf_pairs: params must be a float64 [n_species^2, 5] tensor");
  TORCH_CHECK(erfc.size() == 6, "bks_dsf_pairs: erfc must hold P, A1..A5");
}

// half pair energies [E] and the gradient factor (1/2) e'(r) / r [E]
std::vector<Tensor> pairs_forward(const Tensor& vec_in, const Tensor& type_in, const Tensor& params_in,
                                  const Coulomb& c) {
  auto vec = vec_in.contiguous();
  auto type = type_in.contiguous();
  auto params = params_in.contiguous();
  const int64_t n_edges = vec.size(0), n_types = params.size(0);
  auto energy = torch::empty({n_edges}, vec.options());
  auto factor = torch::empty({n_edges}, vec.options());
  const double* v = vec.data_ptr<double>();
  const int64_t* t = type.data_ptr<int64_t>();
  const double* prm = params.data_ptr<double>();
  double* e_out = energy.data_ptr<double>();
  double* f_out = factor.data_ptr<double>();
  std::atomic<bool> bad_type{false};
  at::parallel_for(0, n_edges, 2048, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      if (t[k] < 0 || t[k] >= n_types) {
        bad_type = true;
        continue;
      }
      const double x = v[3 * k], y = v[3 * k + 1], z = v[3 * k + 2];
      const double r = std::sqrt(x * x + y * y + z * z);
      double e, de;
      pair_terms(r, prm + 5 * t[k], c, e, de);
      e_out[k] = 0.5 * e;
      f_out[k] = 0.5 * de / r;
    }
  });
  TORCH_CHECK(!bad_type, "bks_dsf_pairs: pair_type out of range [0, ", n_types, ")");
  return {energy, factor};
}

Coulomb make_coulomb(double alpha, double e_shift, double f_shift, double sqrt_pi,
                     bool lammps_erfc, c10::ArrayRef<double> erfc) {
  return Coulomb{alpha, e_shift, f_shift, 2.0 * alpha / sqrt_pi, lammps_erfc,
                 erfc[0], erfc[1], erfc[2], erfc[3], erfc[4], erfc[5]};
}

// Autograd: first derivatives only, with respect to vec.
class BKSDSFPairs : public torch::autograd::Function<BKSDSFPairs> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, Tensor vec, Tensor pair_type,
                        Tensor params, double alpha, double e_shift, double f_shift,
                        double sqrt_pi, bool lammps_erfc, std::vector<double> erfc) {
    check_inputs(vec, pair_type, params, erfc);
    auto c = make_coulomb(alpha, e_shift, f_shift, sqrt_pi, lammps_erfc, erfc);
    auto out = pairs_forward(vec, pair_type, params, c);
    ctx->save_for_backward({vec, out[1]});
    return out[0];
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!torch::GradMode::is_enabled(),
                "bks_dsf_pairs has no second derivatives (create_graph)");
    auto s = ctx->get_saved_variables();
    Tensor g = (grads[0] * s[1]).unsqueeze(1) * s[0];     // dE/dvec = g (1/2) e'(r) vec / r
    return {g, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

Tensor bks_dsf_pairs_autograd(const Tensor& vec, const Tensor& pair_type, const Tensor& params,
                              double alpha, double e_shift, double f_shift, double sqrt_pi,
                              bool lammps_erfc, c10::ArrayRef<double> erfc) {
  return BKSDSFPairs::apply(vec, pair_type, params, alpha, e_shift, f_shift, sqrt_pi, lammps_erfc,
                            erfc.vec());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lammps_adv, m) {
  m.def("bks_dsf_pairs(Tensor vec, Tensor pair_type, Tensor params, float alpha, float e_shift, "
        "float f_shift, float sqrt_pi, bool lammps_erfc, float[] erfc) -> Tensor");
}

TORCH_LIBRARY_IMPL(lammps_adv, CompositeImplicitAutograd, m) {
  m.impl("bks_dsf_pairs", bks_dsf_pairs_autograd);
}
