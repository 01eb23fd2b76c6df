"""A finished job gives its memory back (lib_vid2vid.memory)."""


import pytest

from lib_vid2vid import memory


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(memory._malloc_trim() is None, reason="glibc's malloc_trim only (Linux)")
def test_memory_freed_but_kept_by_the_allocator_goes_back_to_the_system():
    # blocks under glibc's mmap threshold come from its heap and stay there when freed; a few kept alive among
    # them keep the heap from shrinking by itself
    blocks = [bytearray(100_000) for _ in range(3000)]  # about 300 MB, every page touched (zeroed)
    kept = blocks[::100]
    del blocks
    before = _rss_mb()
    memory.give_back()
    after = _rss_mb()
    assert before - after > 150, (before, after)
    assert len(kept) == 30  # (alive to the end)


def test_a_job_gives_its_memory_back_when_it_ends(tmp_path, monkeypatch):
    from lib_vid2vid.params import Settings
    from lib_vid2vid.pipeline import run_job
    from lib_vid2vid.proxy import ProxyRenderer
    from tests.clips import make_clip

    calls = []
    monkeypatch.setattr(memory, "give_back", lambda: calls.append(1))
    clip = make_clip(tmp_path / "c.mp4", n_frames=4, audio=False)
    s = Settings().replace(input=str(clip), output_dir=str(tmp_path / "out"), width=96, height=64)
    assert run_job(s, ProxyRenderer()).status == "done"
    assert calls == [1]
