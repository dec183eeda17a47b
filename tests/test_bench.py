"""The PyTorch reference of bench/torch_reference.py stays the same network as model.py (skipped without torch)."""
import os
import sys

import pytest

torch = pytest.importorskip("torch", reason="torch is a bench-only dependency (the bench extra)")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

import torch_reference  # noqa: E402


@pytest.mark.parametrize("size", [64, 32])
def test_torch_port_matches_the_tf_model(size):
    for name, tf_counts, torch_counts in torch_reference.compare_counts(size):
        assert tf_counts == torch_counts, name
    gan = torch_reference.TorchDCGAN("bf16_channels_last", size)
    images = gan.G(torch.rand(3, 100) * 2 - 1)
    assert images.shape == (3, 3, size, size) and images.dtype == torch.float32
    assert gan.D(images).shape == (3, 1)
    batch = torch.randint(0, 256, (4, 3, size, size), dtype=torch.uint8)
    d_loss, g_loss = gan.step(batch)
    assert all(map(torch.isfinite, map(torch.tensor, (d_loss, g_loss))))
    assert all(p.requires_grad for p in gan.D.parameters())  # D is unfrozen again after the G updates


def test_loop_overhead_runs_the_whole_training_loop(tmp_path):
    """bench/loop_overhead.py wraps DCGAN.train_loop to time train.train(): it must keep up with that signature."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, os.path.join(root, "bench", "loop_overhead.py"), "--sizes", "tiny", "--rounds", "1",
           "--ks", "2", "--tiny_steps", "4", "--precision", "float32"]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| whole K=2 |" in out.stdout and "| bare step |" in out.stdout
