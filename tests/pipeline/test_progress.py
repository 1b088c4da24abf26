"""The stage bar counts images (not image x model pairs) and writes whole lines into a log."""
import io

from pipeline.progress import StageProgress


def test_a_log_gets_one_line_per_update_interval_and_counts_images():
    log = io.StringIO()
    with StageProgress(file=log, log_interval_s=0) as bar:
        bar.begin("index", 12)
        for _ in range(3):
            bar.advance(4)
        bar.begin("explain", 12, models=["lite0", "lite1", "lite2"], done={"lite0": 4})
        for model in ("lite0", "lite1", "lite2"):
            while bar.per_model[model] < 12:
                bar.advance(4, model)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("index: 0/12 img") and "index: 12/12 img (100%)" in text
    explain = [line for line in lines if line.startswith("explain")]
    assert explain[0].startswith("explain: 1/12 img")  # lite0's 4 of 12 images, averaged over 3 models
    assert explain[-1].startswith("explain: 12/12 img (100%)")  # 12 images, not 36 image x model pairs
    assert explain[-1].endswith("lite0 12/12 lite1 12/12 lite2 12/12")
    assert all("/36" not in line for line in lines)


def test_the_eta_comes_from_the_stage_average_not_the_work_done_before():
    """A resumed run: 90 of 100 images done before; 5 more in 10 s of this run is 0.5 img/s, so the last 5 are
    10 s away (counting the earlier 90 in the rate would say 9.5 img/s and 00:00 left). The bar reads a clock
    the test sets (tqdm's `_time`), so the numbers are exact."""
    log, clock = io.StringIO(), [1000.0]
    with StageProgress(file=log, log_interval_s=0) as bar:
        bar._time = lambda: clock[0]
        bar.begin("explain", 100, done=90)
        assert bar.format_dict["initial"] == 90 and bar.n == 90
        clock[0] += 10.0
        bar.advance(5)
        line = str(bar)
    assert line.startswith("explain: 95/100 img (95%), 00:10 elapsed, 00:10 left,  2.00s/img"), line