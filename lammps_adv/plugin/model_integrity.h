/* Integrity of a model file, checked when pair_style torchscript (and torchscript/kk) loads
   it: the CRC-32 of every member of the zip archive (torch::jit::load does not check them),
   and the checksum of the parameters and buffers that lammps-adv's export stores in the
   archive. The same checks as lammps_adv/models/integrity.py; docs/plugin.md. */

#ifndef LAMMPS_ADV_MODEL_INTEGRITY_H
#define LAMMPS_ADV_MODEL_INTEGRITY_H

#include <torch/script.h>

#include <string>

namespace lammps_adv {

// the archive member (extra file) holding "crc32:xxxxxxxx" of the parameters and buffers
extern const char *const CHECKSUM_FILE;

// "" when every stored member of the zip archive at path matches its CRC-32, else what does
// not, on one line (also for a file that is not a readable zip archive)
std::string archive_problem(const std::string &path);

// "crc32:xxxxxxxx" over the module's parameters and buffers in name order: each name
// (UTF-8) then the tensor's bytes (contiguous, on the CPU)
std::string parameter_checksum(const torch::jit::Module &module);

}    // namespace lammps_adv

#endif
