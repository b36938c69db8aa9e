"""Energy models in PyTorch, exported to TorchScript under the model contract of docs/.

Importing the package registers the fused kernels (``torch.ops.lammps_adv.*``) with torch:
the models call them, so ``torch.jit.load`` opens any model file, the shipped ones included,
once ``lammps_adv.models`` is imported.
"""
from lammps_adv.plugin.kernels import load_kernels

load_kernels()
