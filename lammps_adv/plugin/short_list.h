/* The model's edges (centre, neighbour closer than the cutoff) each step, from a short list
   of the pairs near the cutoff instead of a pass over LAMMPS' whole full list.

   rebuild() scans LAMMPS' list once and keeps, per centre, the pairs closer than
   cutoff - MARGIN ("inner": edges for sure) and those within cutoff +- MARGIN ("shell").
   While no atom (local or ghost) has moved MARGIN / 2 since, and LAMMPS has not rebuilt its
   lists, every pair distance has changed by less than MARGIN: inner pairs are still within
   the cutoff and pairs left out are still beyond it (LAMMPS' list holds every pair that can
   come within its cutoff until it rebuilds). So edges() checks the shell only and copies the
   inner pairs. stale() says when that no longer holds. The edge set is the one a pass over
   LAMMPS' list gives (same test, same arithmetic); within a centre, inner pairs come first.

   With LAMMPS' default 2 A skin and an 8 A cutoff, LAMMPS lists about twice as many pairs as
   there are edges; a step here checks a fifth of them and costs about 40 % of a pass over the
   list (bench/bench_plugin.py, docs/plugin.md). A rebuild costs a little more than one pass.

   Shared by pair_style torchscript and the one-thread host path of torchscript/kk: the
   callers hand over LAMMPS' list as three functions (centre(ii), count(i), row(i)) and the
   coordinates as one contiguous [nall][3] array.
*/
#ifndef LMP_ADV_SHORT_LIST_H
#define LMP_ADV_SHORT_LIST_H

#include "lmptype.h"    // NEIGHMASK

#include <algorithm>
#include <cstdint>
#include <vector>

namespace LAMMPS_NS {

class ShortList {
 public:
  static constexpr double MARGIN = 0.5;    // A: shell half-width; rebuild after MARGIN/2 moved

  // rebuild() is due: LAMMPS rebuilt its lists (its build count changed), the atoms, the
  // centres or the cutoff changed, or an atom moved MARGIN/2 or more since the last rebuild
  bool stale(const double (*x)[3], int nall, int ncentre, double cutoff,
             int64_t lammps_builds) const
  {
    if (lammps_builds != builds || nall != (int) (x_ref.size() / 3) ||
        ncentre != (int) centres.size() || cutoff != cut)
      return true;
    // a hair below (MARGIN/2)^2 so that rounding cannot let a move of MARGIN/2 through
    const double limit = 0.25 * MARGIN * MARGIN * (1.0 - 1e-9);
    const double *ref = x_ref.data();
    int moved = 0;
    for (int i = 0; i < nall; i++) {
      const double dx = x[i][0] - ref[3 * i], dy = x[i][1] - ref[3 * i + 1],
                   dz = x[i][2] - ref[3 * i + 2];
      moved += (dx * dx + dy * dy + dz * dz >= limit);    // counts: vectorises, no branch
    }
    return moved > 0;
  }

  // one pass over LAMMPS' full list: centre(ii) is the ii-th centre, count(i) and row(i) its
  // listed neighbours (special-bond bits are masked off here)
  template <class Centre, class Count, class Row>
  void rebuild(int ncentre, Centre centre, Count count, Row row, const double (*x)[3],
               int nall, double cutoff, int64_t lammps_builds)
  {
    builds = lammps_builds;
    cut = cutoff;
    x_ref.assign(&x[0][0], &x[0][0] + 3 * (int64_t) nall);
    centres.resize(ncentre);
    inner_end.resize(ncentre);
    shell_end.resize(ncentre);
    kept_end.resize(ncentre);
    int64_t listed = 0;
    for (int ii = 0; ii < ncentre; ii++) listed += count(centre(ii));
    // branch-free below: every listed pair is written to both, and kept in one at most
    if ((int64_t) inner.size() < listed + 1) inner.resize(listed + listed / 4 + 64);
    if ((int64_t) shell.size() < listed + 1) shell.resize(listed + listed / 4 + 64);

    const double lo = std::max(cutoff - MARGIN, 0.0), hi = cutoff + MARGIN;
    const double losq = lo * lo, hisq = hi * hi;
    int *in = inner.data(), *sh = shell.data();
    int64_t ni = 0, ns = 0;
    for (int ii = 0; ii < ncentre; ii++) {
      const int i = centre(ii);
      centres[ii] = i;
      const double xi = x[i][0], yi = x[i][1], zi = x[i][2];
      const int *jlist = row(i);
      const int jnum = count(i);
      for (int jj = 0; jj < jnum; jj++) {
        const int j = jlist[jj] & NEIGHMASK;
        const double dx = x[j][0] - xi, dy = x[j][1] - yi, dz = x[j][2] - zi;
        const double rsq = dx * dx + dy * dy + dz * dz;
        in[ni] = j;
        sh[ns] = j;
        ni += (rsq < losq);
        ns += (rsq >= losq) & (rsq < hisq);
      }
      inner_end[ii] = ni;
      shell_end[ii] = ns;
    }
    if ((int64_t) kept.size() < ns + 1) kept.resize(ns + ns / 4 + 64);
  }

  // most edges edges() can return (room for 2 x this in its output)
  int64_t max_edges() const
  {
    return centres.empty() ? 0 : inner_end.back() + shell_end.back();
  }

  // the edges within the cutoff at positions x as one contiguous [2, E] array in out
  // (sources, then destinations), sorted by centre; returns E
  int64_t edges(const double (*x)[3], int64_t *out)
  {
    const int ncentre = (int) centres.size();
    const double cutsq = cut * cut;
    const int *sh = shell.data();
    int *kp = kept.data();
    // the shell pairs within the cutoff, per centre (the same test as a pass over the list)
    int64_t nk = 0, first = 0;
    for (int ii = 0; ii < ncentre; ii++) {
      const int i = centres[ii];
      const double xi = x[i][0], yi = x[i][1], zi = x[i][2];
      for (int64_t k = first; k < shell_end[ii]; k++) {
        const int j = sh[k];
        const double dx = x[j][0] - xi, dy = x[j][1] - yi, dz = x[j][2] - zi;
        kp[nk] = j;
        nk += (dx * dx + dy * dy + dz * dz < cutsq);
      }
      first = shell_end[ii];
      kept_end[ii] = nk;
    }
    // now that E is known, sources and destinations go straight into place
    const int64_t nedge = (ncentre ? inner_end.back() : 0) + nk;
    int64_t *src = out, *dst = out + nedge;
    int64_t at = 0, inner_first = 0, kept_first = 0;
    for (int ii = 0; ii < ncentre; ii++) {
      const int64_t ni = inner_end[ii] - inner_first, nki = kept_end[ii] - kept_first;
      std::fill(src + at, src + at + ni + nki, (int64_t) centres[ii]);
      std::copy(inner.data() + inner_first, inner.data() + inner_end[ii], dst + at);
      std::copy(kp + kept_first, kp + kept_end[ii], dst + at + ni);
      at += ni + nki;
      inner_first = inner_end[ii];
      kept_first = kept_end[ii];
    }
    return nedge;
  }

 private:
  int64_t builds = -1;          // LAMMPS' neighbour-list build count at the rebuild
  double cut = -1.0;            // the cutoff it was made for (A)
  std::vector<double> x_ref;    // coordinates [nall][3] at the rebuild
  std::vector<int> centres;     // the list's centres, in its order
  std::vector<int> inner, shell, kept;                        // neighbour indices
  std::vector<int64_t> inner_end, shell_end, kept_end;    // per centre: end in each
};

}    // namespace LAMMPS_NS

#endif
