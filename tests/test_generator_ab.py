from benchmarks.generator_ab import interleaved_seconds, summary


def test_settings_take_turns_after_their_warmup_and_each_turn_is_timed_per_step():
    calls, now = [], [0.0]
    cost = {"A": 3.0, "B": 2.0}  # seconds a step of each setting advances the fake clock

    def step(name):
        def run():
            calls.append(name)
            now[0] += cost[name]
        return run

    seconds = interleaved_seconds({"A": step("A"), "B": step("B")}, pairs=3, per_turn=2, warmup=1,
                                  clock=lambda: now[0])
    assert calls == ["A", "B"] + ["A", "A", "B", "B"] * 3
    assert seconds == {"A": [3.0, 3.0, 3.0], "B": [2.0, 2.0, 2.0]}


def test_summary_reports_medians_and_how_much_faster_b_is():
    out = summary({"A": [1.30, 1.20, 1.40, 1.25], "B": [1.00, 0.95, 2.00, 1.05]})
    assert out["median_seconds_per_step"] == {"A": 1.275, "B": 1.025}
    assert out["speedup_of_b"] == round(1.275 / 1.025, 2) == 1.24
    assert out["seconds_per_step"]["B"] == [1.0, 0.95, 2.0, 1.05]


def test_in_thread_returns_the_result_and_stops_when_the_thread_failed():
    import threading

    import pytest

    from benchmarks.training import in_thread

    assert in_thread(lambda: threading.current_thread() is not threading.main_thread()) is True
    with pytest.raises(SystemExit, match="thread failed"):
        in_thread(lambda: 1 / 0)
