// Exit status 0 when this CPU runs x86-64-v3 code (AVX2 + FMA), or with the argument "v4"
// x86-64-v4 code (AVX-512 F, BW, CD, DQ, VL): CMake's try_run picks the kernels' instruction
// set with it.
#include <cstring>

int main(int argc, char** argv) {
  __builtin_cpu_init();
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (argc > 1 && std::strcmp(argv[1], "v4") == 0)
    return v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                   __builtin_cpu_supports("avx512vl")
               ? 0 : 1;
  return v3 ? 0 : 1;
}
