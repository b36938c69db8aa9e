// Exit status 0 when this CPU runs x86-64-v3 code (AVX2 + FMA): CMake's try_run picks the
// kernels' instruction set with it.
int main() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 0 : 1;
}
