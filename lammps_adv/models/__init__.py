"""Energy models in PyTorch, exported to TorchScript under the model contract of docs/."""
