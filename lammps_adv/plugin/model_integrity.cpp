/* See model_integrity.h. Zip layout: PKWARE APPNOTE 6.3 (end of central directory, its
   ZIP64 form, central directory entries, local headers). */

#include "model_integrity.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

namespace lammps_adv {

const char *const CHECKSUM_FILE = "parameters.crc32";

namespace {

// CRC-32 of zip and zlib (reflected polynomial 0xEDB88320)
const std::array<uint32_t, 256> &crc_table()
{
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

uint32_t crc32(uint32_t crc, const unsigned char *data, size_t n)
{
  const auto &t = crc_table();
  crc = ~crc;
  for (size_t i = 0; i < n; i++) crc = t[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

// little-endian reads within the buffer; false when out of range
struct Reader {
  const std::vector<unsigned char> &b;
  bool ok = true;
  uint64_t get(uint64_t at, int bytes)
  {
    if (at + bytes > b.size()) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | b[at + i];
    return v;
  }
};

}    // namespace

std::string archive_problem(const std::string &path)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot be read";
  std::vector<unsigned char> b((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
  Reader r{b};
  // end of central directory: the last signature within 64 kB + 22 bytes of the end
  if (b.size() < 22) return "not a zip archive (too short)";
  int64_t eocd = -1;
  const int64_t lowest = std::max<int64_t>(0, (int64_t) b.size() - 22 - 65535);
  for (int64_t at = (int64_t) b.size() - 22; at >= lowest; at--)
    if (r.get(at, 4) == 0x06054b50u) {
      eocd = at;
      break;
    }
  if (eocd < 0) return "not a zip archive (no end of central directory)";
  uint64_t entries = r.get(eocd + 10, 2), cd_offset = r.get(eocd + 16, 4);
  if ((entries == 0xFFFFu || cd_offset == 0xFFFFFFFFu) && eocd >= 20 &&
      r.get(eocd - 20, 4) == 0x07064b50u) {    // ZIP64 locator -> ZIP64 end of directory
    const uint64_t z = r.get(eocd - 20 + 8, 8);
    if (r.get(z, 4) != 0x06064b50u) return "corrupt ZIP64 end of central directory";
    entries = r.get(z + 32, 8);
    cd_offset = r.get(z + 48, 8);
  }
  uint64_t at = cd_offset;
  for (uint64_t e = 0; e < entries; e++) {
    if (r.get(at, 4) != 0x02014b50u || !r.ok) return "corrupt central directory";
    const uint64_t method = r.get(at + 10, 2), crc = r.get(at + 16, 4);
    uint64_t size = r.get(at + 20, 4), usize = r.get(at + 24, 4);
    const uint64_t name_len = r.get(at + 28, 2), extra_len = r.get(at + 30, 2),
                   comment_len = r.get(at + 32, 2);
    uint64_t local = r.get(at + 42, 4);
    if (!r.ok || at + 46 + name_len > b.size()) return "corrupt central directory";
    const std::string name(b.begin() + at + 46, b.begin() + at + 46 + name_len);
    // ZIP64 extra field: 64-bit values for the fields saturated above, in this order
    for (uint64_t x = at + 46 + name_len; x + 4 <= at + 46 + name_len + extra_len;) {
      const uint64_t id = r.get(x, 2), len = r.get(x + 2, 2);
      if (id == 0x0001u) {
        uint64_t p = x + 4;
        if (usize == 0xFFFFFFFFu) usize = r.get(p, 8), p += 8;
        if (size == 0xFFFFFFFFu) size = r.get(p, 8), p += 8;
        if (local == 0xFFFFFFFFu) local = r.get(p, 8);
      }
      x += 4 + len;
    }
    if (r.get(local, 4) != 0x04034b50u || !r.ok)
      return "member " + name + " has no local header (the file is truncated or corrupt)";
    const uint64_t data = local + 30 + r.get(local + 26, 2) + r.get(local + 28, 2);
    if (!r.ok || data + size > b.size())
      return "member " + name + " extends past the end of the file (truncated)";
    if (method == 0 && crc32(0, b.data() + data, size) != (uint32_t) crc)    // stored
      return "member " + name + " fails its CRC-32 check (the file is corrupt)";
    at += 46 + name_len + extra_len + comment_len;
  }
  return "";
}

std::string parameter_checksum(const torch::jit::Module &module)
{
  std::vector<std::pair<std::string, torch::Tensor>> all;
  for (const auto &p : module.named_parameters(true)) all.emplace_back(p.name, p.value);
  for (const auto &p : module.named_buffers(true)) all.emplace_back(p.name, p.value);
  std::sort(all.begin(), all.end(),
            [](const auto &a, const auto &b) { return a.first < b.first; });
  uint32_t crc = 0;
  for (const auto &[name, value] : all) {
    crc = crc32(crc, reinterpret_cast<const unsigned char *>(name.data()), name.size());
    const torch::Tensor t = value.detach().to(torch::kCPU).contiguous();
    crc = crc32(crc, static_cast<const unsigned char *>(t.data_ptr()), t.nbytes());
  }
  char text[16];
  std::snprintf(text, sizeof text, "crc32:%08x", crc);
  return text;
}

}    // namespace lammps_adv
