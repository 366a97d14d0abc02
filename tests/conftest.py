import os

import pytest

# Tests must not depend on the developer's thread settings or on downloads.
os.environ.setdefault("SHRINKBENCH_DOWNLOAD", "0")


@pytest.fixture(autouse=True)
def _torch_threads():
    """Pin intra-op threads for every test so results do not depend on the machine."""
    try:
        import torch
    except ImportError:  # analysis-only environments
        yield
        return
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
