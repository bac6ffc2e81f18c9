import io

from perceptual_edge.progress import Progress, format_duration


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_line_has_rate_eta_and_values():
    p = Progress(total=100, start=1, stream=_Tty())
    p._t0 -= 10.0  # pretend this run started 10 s ago, resumed at step 1
    p.count, p.values = 11, {"loss": 1.25, "style": 3e-5}
    line = p.line(now=p._t0 + 10.0)
    assert "11/100 it" in line and "1.00 it/s" in line and "ETA 01:29" in line
    assert "loss=1.25" in line and "style=3e-05" in line


def test_quiet_when_not_a_terminal():
    buf = io.StringIO()
    with Progress(10, stream=buf) as p:
        for _ in range(10):
            p.update()
    assert buf.getvalue() == "" and p.count == 10


def test_draws_on_a_terminal_and_ends_the_line():
    buf = _Tty()
    with Progress(4, "frames", stream=buf, min_interval=0.0) as p:
        p.update()
        p.update(3)
    text = buf.getvalue()
    assert "1/4 frames" in text and "4/4 frames" in text
    assert "frames/s" in text and "ETA" in text and text.endswith("\n")
    unknown = _Tty()
    with Progress(None, "frames", stream=unknown, min_interval=0.0) as p:
        p.set(7, {"size": 64})
    assert "7 frames" in unknown.getvalue() and "size=64" in unknown.getvalue()


def test_format_duration():
    assert format_duration(5) == "00:05"
    assert format_duration(59.6) == "01:00"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(float("nan")) == "?"
