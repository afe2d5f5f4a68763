"""RESULTS.md keeps one block per machine kind in each benchmark's section: a run replaces only its own."""

from benchmarks.common import kind_key, kind_markers, kind_of_machine_line, merge_section

EPYC_BF16 = "AMD EPYC, 2 cores, AVX512-BF16"
OLD = """# Benchmark results

<!-- throughput:start -->
## throughput

- machine: AMD EPYC, 2 logical cores, torch 2.14.1+cu130 (AVX2), 2 torch threads, native bf16: False
| engine loop, images/s | 5665 |
<!-- throughput:end -->

## Notes
"""


def block(kind, text):
    start, end = kind_markers("throughput", kind)
    return "\n".join([start, f"### {kind}", "", text, end])


def test_an_old_section_keeps_its_machines_figures_beside_a_new_kinds():
    text = merge_section(OLD, "throughput", EPYC_BF16, block(EPYC_BF16, "NEW"))
    assert kind_markers("throughput", "AMD EPYC, 2 cores, AVX2")[0] in text
    assert "| engine loop, images/s | 5665 |" in text and "NEW" in text
    assert text.endswith("<!-- throughput:end -->\n\n## Notes\n")


def test_a_rerun_replaces_only_its_own_kinds_block():
    text = merge_section(OLD, "throughput", EPYC_BF16, block(EPYC_BF16, "FIRST"))
    text = merge_section(text, "throughput", EPYC_BF16, block(EPYC_BF16, "SECOND"))
    assert "SECOND" in text and "FIRST" not in text and "5665" in text
    assert text.count(kind_markers("throughput", EPYC_BF16)[0]) == 1


def test_a_new_section_is_appended():
    text = merge_section(OLD, "streaming", EPYC_BF16, "X")
    assert text.startswith(OLD.rstrip("\n")) and text.endswith("<!-- streaming:end -->\n")


def test_machine_kinds():
    assert kind_key("Intel(R) Xeon(R) Platinum 8480+", 2, ["avx2", "avx512_bf16", "amx_tile"]) == (
        "Intel Xeon Platinum 8480+, 2 cores, AMX"
    )
    gpu = kind_key("AMD EPYC 7763 64-Core Processor", 4, ["avx2"], "NVIDIA H200")
    assert gpu == "AMD EPYC 7763, 4 cores, AVX2, NVIDIA H200"
    flagged = "- machine: AMD EPYC, 2 logical cores, CPU flags: avx512_bf16, torch 2.14.1 (AVX512), native bf16: True"
    assert kind_of_machine_line(flagged) == EPYC_BF16
    unflagged = "- machine: AMD EPYC, 2 logical cores, torch 2.14.1+cu130 (AVX512), 2 torch threads, native bf16: True"
    assert kind_of_machine_line(unflagged) == EPYC_BF16
