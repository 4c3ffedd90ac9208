import platform
import subprocess
import sys

import pytest

from lipforge import cpu_allocator

SNIPPET = "from lipforge.cpu_allocator import keep_freed_memory; print(keep_freed_memory()); print(keep_freed_memory())"


def status_in_fresh_process(env_value: str | None, monkeypatch) -> list[str]:
    # mallopt changes the whole process: each case runs in its own interpreter
    if env_value is None:
        monkeypatch.delenv(cpu_allocator.OPT_OUT, raising=False)
    else:
        monkeypatch.setenv(cpu_allocator.OPT_OUT, env_value)
    done = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True, check=True)
    return done.stdout.split("\n")[:2]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_on_by_default_with_glibc_and_idempotent(monkeypatch):
    assert status_in_fresh_process(None, monkeypatch) == ["on", "on"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_status_reads_without_applying(monkeypatch):
    monkeypatch.delenv(cpu_allocator.OPT_OUT, raising=False)
    code = ("from lipforge.cpu_allocator import allocator_status, keep_freed_memory; print(allocator_status()); "
            "print(allocator_status()); keep_freed_memory(); print(allocator_status())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:3] == ["not applied in this process"] * 2 + ["on"]
    monkeypatch.setenv(cpu_allocator.OPT_OUT, "0")
    monkeypatch.setattr(cpu_allocator, "_status", None)
    assert cpu_allocator.allocator_status() == "off (LIPFORGE_KEEP_FREED_MEMORY=0)"


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_opt_out_leaves_malloc_alone(value, monkeypatch):
    assert status_in_fresh_process(value, monkeypatch) == ["off (LIPFORGE_KEEP_FREED_MEMORY=0)"] * 2


def test_not_glibc_is_reported_not_applied(monkeypatch):
    monkeypatch.setattr(cpu_allocator, "_status", None)
    monkeypatch.delenv(cpu_allocator.OPT_OUT, raising=False)
    monkeypatch.setattr(cpu_allocator.platform, "libc_ver", lambda: ("musl", ""))
    assert cpu_allocator.keep_freed_memory() == "unavailable (C library musl, not glibc)"


def test_worker_env_names_glibcs_start_up_settings_unless_opted_out(monkeypatch):
    monkeypatch.delenv(cpu_allocator.OPT_OUT, raising=False)
    assert cpu_allocator.worker_env() == {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "2147483647",
                                          "MALLOC_ARENA_MAX": "1"}
    monkeypatch.setenv(cpu_allocator.OPT_OUT, "0")
    assert cpu_allocator.worker_env() == {}
