"""What a record says of the machine it ran on: enough to tell why a re-run on another CPU may
differ in the last bits (torch's CPU kernels dispatch on the vector instruction set)."""
import re
from pathlib import Path

import torch

from shrinkbench.core.provenance import cpu_capability, cpu_model, environment


def test_the_environment_names_the_cpu_and_the_instruction_set_torch_dispatches_to():
    env = environment(torch.device("cpu"))
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability() == cpu_capability()
    assert env["cpu_capability"] in {"DEFAULT", "VSX", "ZVECTOR", "SVE256", "AVX2", "AVX512"} or \
        env["cpu_capability"].startswith(("SVE", "NEON"))
    info = Path("/proc/cpuinfo")
    if info.is_file():
        found = re.search(r"^model name\s*:\s*(.+)$", info.read_text(errors="replace"), re.M)
        assert env["cpu_model"] == cpu_model() == (found.group(1).strip() if found else None)
