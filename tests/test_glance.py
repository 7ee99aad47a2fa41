"""The deployment page's first screen, worked out without a browser (pipelines.portal.glance): retention in
words for every policy shape the registry allows, who else may access the data, and the verdict on the
last 30 days from retention-ledger rows and findings as the audit publishes them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from pipelines.portal import glance
from pipelines.portal.glance import LedgerDay, LimitFinding, Verdict
from pipelines.portal.i18n import SHIPPED_LANGS, Translator
from pipelines.registry import AccessGrant, PolicyVersion, RetentionRule

pytestmark = pytest.mark.unit

EN = Translator("en")
TZ = "America/New_York"
# The audit ran "as of" local midnight starting 22 July 2026: it judged up to 21 July.
AS_OF = datetime(2026, 7, 22, 4, tzinfo=UTC)
WINDOW = glance.audit_window(AS_OF, TZ)


def rule(period: str, trigger: str = "window_end", stated: str | None = None) -> RetentionRule:
    return RetentionRule("plate_reads", period, trigger, stated)


# -- retention in words --------------------------------------------------------------------------------


@pytest.mark.parametrize(("period", "trigger", "stated", "words"), [
    ("P30D", "window_end", None, "30 days"),
    ("P1D", "window_end", None, "1 day"),
    ("PT72H", "window_end", None, "72 hours"),
    ("PT24H", "window_end", None, "24 hours"),
    ("P2W", "window_end", None, "2 weeks"),
    ("P1M", "window_end", None, "1 month"),
    ("P1Y", "window_end", None, "1 year"),
    ("P1Y6M", "window_end", None, "1 year and 6 months"),
    ("P1Y2M3D", "window_end", None, "1 year, 2 months and 3 days"),
    ("P1DT12H", "window_end", None, "1 day and 12 hours"),
    ("PT90M", "window_end", None, "90 minutes"),
    ("PT30S", "window_end", None, "30 seconds"),
    ("P7D", "window_start", None, "7 days, counted from the start of collection"),
    ("P30D", "case_closed", None, "30 days after the case is closed"),
    ("none", "case_closed", None, "until the case is closed"),
    ("P0D", "case_closed", None, "until the case is closed"),
    ("none", "window_end", None, "not kept"),
    ("P0D", "window_end", None, "not kept"),
    ("indefinite", "window_end", None, "no deletion date"),
    ("unknown", "window_end", "-Infinity days", "not stated clearly: “-Infinity days”"),
])
def test_retention_is_said_in_words_for_every_policy_shape(period: str, trigger: str, stated: str | None,
                                                           words: str) -> None:
    assert glance.retention_words(rule(period, trigger, stated), EN) == words


def test_a_class_without_a_rule_says_so() -> None:
    assert glance.retention_words(None, EN) == "no limit declared"


@pytest.mark.parametrize("lang", SHIPPED_LANGS)
def test_no_language_prints_the_machine_form(lang: str) -> None:
    t = Translator(lang)
    for r in (rule("P30D"), rule("PT72H"), rule("P1Y6M", "window_start"), rule("P14D", "case_closed"),
              rule("none"), rule("indefinite"), rule("unknown", stated="NA")):
        words = glance.retention_words(r, t)
        assert words and "P30D" not in words and "PT72H" not in words and "{" not in words
        assert r.period not in words or r.kind == "unknown"


def test_spanish_units_and_plural() -> None:
    es = Translator("es")
    assert glance.retention_words(rule("P30D"), es) == "30 días"
    assert glance.retention_words(rule("P1Y6M"), es) == "1 año y 6 meses"


def test_a_later_declared_change_is_found() -> None:
    v1 = PolicyVersion(1, date(2025, 1, 1), (rule("P30D"),), ())
    v2 = PolicyVersion(2, date(2026, 8, 1), (rule("P14D"),), ())
    assert glance.policy_in_force((v1, v2), date(2026, 7, 21)) is v1
    assert glance.later_rule((v1, v2), "plate_reads", date(2026, 7, 21)) == (date(2026, 8, 1), rule("P14D"))
    assert glance.later_rule((v1, v2), "plate_reads", date(2026, 8, 1)) is None
    assert glance.later_rule((v1,), "plate_reads", date(2026, 7, 21)) is None


# -- who else may access it --------------------------------------------------------------------------------


def grant(org: str | None = None, count: int | None = None, stated: str | None = None) -> AccessGrant:
    return AccessGrant(org, (), None, count, None, stated)


def test_access_names_the_others_then_counts() -> None:
    grants = [grant("Riverton Police"), grant("County DA"), grant("riverton  police"), grant("State Lab"),
              grant("Transit Agency"), grant("Fire Department")]
    assert glance.access_words(grants, "Riverton Police", EN) == "County DA, State Lab, Transit Agency, and 1 more"


def test_access_counted_and_unstated_grants_are_said_as_declared() -> None:
    words = glance.access_words([grant(count=988), grant(stated="NA")], "Riverton Police", EN)
    assert words == "988 organisations not named, not stated clearly: “NA”"


def test_access_by_nobody_else() -> None:
    assert glance.access_words([grant("Riverton Police")], "Riverton Police", EN) == "No one besides Riverton Police"
    assert glance.access_words([], "Riverton Police", EN) == "No one besides Riverton Police"


# -- the window ----------------------------------------------------------------------------------------------


def test_the_window_is_the_thirty_local_days_the_audit_judged() -> None:
    assert (WINDOW.first, WINDOW.last) == (date(2026, 6, 22), date(2026, 7, 21))
    assert WINDOW.end == AS_OF and WINDOW.audited
    assert WINDOW.start == datetime(2026, 6, 22, 4, tzinfo=UTC)  # local midnight, EDT
    # An as_of that is not a local midnight judges its own day too.
    later = glance.audit_window(AS_OF + timedelta(hours=15), TZ)
    assert later.last == date(2026, 7, 22) and later.end == AS_OF + timedelta(hours=15)


def test_the_window_crosses_a_clock_change_in_local_days() -> None:
    window = glance.audit_window(datetime(2026, 11, 20, 5, tzinfo=UTC), TZ)  # midnight EST
    assert (window.first, window.last) == (date(2026, 10, 21), date(2026, 11, 19))
    assert window.start == datetime(2026, 10, 21, 4, tzinfo=UTC)  # midnight EDT


def test_as_of_is_read_from_the_audits_parquet_metadata() -> None:
    assert glance.parse_as_of({b"sensorlog.as_of": b"2026-07-22T04:00:00Z"}) == AS_OF
    assert glance.parse_as_of({b"sensorlog.as_of": b"yesterday"}) is None
    assert glance.parse_as_of({b"sensorlog.as_of": b"2026-07-22T04:00:00"}) is None  # no zone: not trusted
    assert glance.parse_as_of(None) is None


# -- the verdict ---------------------------------------------------------------------------------------------


def day(n: int, collected: int = 0, deleted: int = 0, retained: int = 0, status: str = "ok",
        next_due: datetime | None = None) -> LedgerDay:
    """Ledger row of the window's n-th day (0 = its first)."""
    return LedgerDay(WINDOW.first + timedelta(days=n), collected, deleted, retained, status, next_due)


def limit_row(kind: str, numbers: dict, start: datetime, end: datetime, id_: str = "abc") -> dict:
    """A findings row as the portal reads it: numbers are JSON text."""
    return {"id": id_, "kind": kind, "severity": "medium", "deployment_id": "d", "data_class": "plate_reads",
            "period_start": start, "period_end": end, "numbers": json.dumps(numbers)}


def verdict(r: RetentionRule | None, days: list[LedgerDay], rows: Sequence[dict] = (),
            window: glance.Window | None = WINDOW) -> Verdict:
    found = [f for f in (LimitFinding.from_row(row) for row in rows) if f is not None]
    return glance.class_verdict("plate_reads", r, days, found, window)


def test_deleted_on_time() -> None:
    v = verdict(rule("P7D"), [day(0, 100, 0, 100), day(8, 0, 100, 0)])
    assert v.kind == "on_time" and glance.verdict_text(v, EN) == "Deleted on time"
    assert v.evidence == ("ledger-plate_reads",)


def test_kept_twelve_days_past_its_limit() -> None:
    due = datetime(2026, 7, 1, 4, tzinfo=UTC)
    row = limit_row("late_deletion", {"days": 1, "records": 100, "records_retained": 0, "days_late": 12.2,
                                      "first_due": "2026-07-01T04:00:00Z", "last_deleted_at": "2026-07-13T09:00:00Z",
                                      "declared_period": "P7D", "grace_days": 1.0},
                    due - timedelta(days=8), due - timedelta(days=7))
    v = verdict(rule("P7D"), [day(0, 100, 0, 100), day(21, 0, 100, 0)], [row])
    assert v.kind == "late" and glance.verdict_text(v, EN) == "Kept 12 days past its limit"
    assert v.evidence[0] == "finding-abc"  # links to the finding on the page first


def test_still_kept_counts_up_to_as_of() -> None:
    row = limit_row("retained_past_policy", {"records_retained": 40, "first_due": "2026-07-17T04:00:00Z",
                                             "days_late": None}, AS_OF - timedelta(days=12), AS_OF)
    v = verdict(rule("P7D"), [day(20, 40, 0, 40, "overdue", datetime(2026, 7, 17, 4, tzinfo=UTC))], [row])
    assert v.kind == "late" and v.days == pytest.approx(5.0)
    assert glance.verdict_text(v, EN) == "Kept 5 days past its limit"


def test_one_day_and_less_than_a_day() -> None:
    assert glance.verdict_text(Verdict("late", 1.2), EN) == "Kept 1 day past its limit"
    assert glance.verdict_text(Verdict("late", 0.4), EN) == "Kept less than a day past its limit"
    assert glance.verdict_text(Verdict("late", 11.5), EN) == "Kept 12 days past its limit"


def test_an_overdue_ledger_day_without_a_finding_is_still_late() -> None:
    due = WINDOW.start + timedelta(days=10)
    v = verdict(rule("P7D"), [day(0, 5, 0, 5), day(13, 0, 0, 5, "overdue", due)])
    assert v.kind == "late" and glance.whole_days(v.days or 0) == 4  # end of day 13 is 14 days after start


def test_lateness_before_the_window_does_not_count() -> None:
    old = datetime(2026, 5, 1, 4, tzinfo=UTC)
    row = limit_row("late_deletion", {"days_late": 3.0, "first_due": "2026-05-01T04:00:00Z",
                                      "last_deleted_at": "2026-05-04T04:00:00Z", "records_retained": 0},
                    old - timedelta(days=8), old - timedelta(days=7))
    v = verdict(rule("P7D"), [day(3, 10, 10, 0)], [row])
    assert v.kind == "on_time"


def test_no_data_in_the_last_30_days() -> None:
    assert verdict(rule("P7D"), []).kind == "no_data"
    v = verdict(rule("P7D"), [day(0), day(29)])  # ledger rows, all zero
    assert glance.verdict_text(v, EN) == "No data in the last 30 days"


def test_not_audited_yet() -> None:
    assert verdict(rule("P7D"), [], window=None).kind == "not_audited"
    before_audit = glance.window_ending(date(2026, 7, 21), TZ)  # the build's today: no audit
    v = verdict(rule("P7D"), [day(0, 10, 0, 10)], window=before_audit)
    assert glance.verdict_text(v, EN) == "Not audited yet"


@pytest.mark.parametrize(("r", "kind"), [
    (rule("P1Y"), "within"),
    (rule("indefinite"), "indefinite"),
    (rule("unknown", stated="NA"), "unclear"),
    (rule("P30D", "case_closed"), "case"),
    (None, "undeclared"),
])
def test_what_cannot_be_on_time_is_said_plainly(r: RetentionRule | None, kind: str) -> None:
    v = verdict(r, [day(0, 10, 0, 10), day(29, 10, 0, 20)])
    assert v.kind == kind
    assert glance.verdict_text(v, EN) and glance.verdict_text(v, EN) != glance.verdict_text(Verdict("on_time"), EN)


def test_a_deployment_shows_its_worst_class() -> None:
    verdicts = [Verdict("on_time", evidence=("ledger-a",)), Verdict("late", 3.0, ("finding-1",)),
                Verdict("late", 9.0, ("finding-2",)), Verdict("no_data")]
    overall = glance.overall_verdict(verdicts, WINDOW)
    assert overall.kind == "late" and overall.days == 9.0 and overall.evidence == ("finding-1", "finding-2")
    assert glance.overall_verdict([], WINDOW).kind == "no_data"
    assert glance.overall_verdict([], None).kind == "not_audited"


def test_the_index_sorts_worse_verdicts_higher() -> None:
    order = [Verdict("not_audited"), Verdict("no_data"), Verdict("on_time"), Verdict("undeclared"),
             Verdict("late", 2.0), Verdict("late", 30.0)]
    keys = [glance.verdict_sort_key(v) for v in order]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_every_verdict_has_words_in_every_language() -> None:
    for lang in SHIPPED_LANGS:
        t = Translator(lang)
        for kind in glance.VERDICTS:
            v = Verdict(kind, 12.0 if kind == "late" else None)
            text = glance.verdict_text(v, t)
            assert text and "{" not in text
            assert t.text(f"verdict_filter_{kind}")
        assert "12" in glance.verdict_text(Verdict("late", 12.0), t)


def test_a_verdict_links_the_finding_that_backs_it() -> None:
    v = verdict(None, [day(0, 10, 0, 10, "no_policy")])
    assert v.evidence == ("ledger-plate_reads",)
    found = glance.class_verdict("plate_reads", None, [day(0, 10, 0, 10, "no_policy")], [], WINDOW,
                                 {"undeclared_data_class": ["f1"], "indefinite_retention": ["f2"]})
    assert found.kind == "undeclared" and found.evidence == ("finding-f1", "ledger-plate_reads")


# -- on the page (rendered without a build or a browser) -----------------------------------------------------


def test_a_page_says_how_late_and_links_the_finding() -> None:
    from pipelines.config import PROJECT_DIR
    from pipelines.portal.activity import Activity
    from pipelines.portal.options import PortalOptions
    from pipelines.portal.pages import Common, index_pages, render_deployment
    from pipelines.registry import Registry, load_registry

    d = load_registry(PROJECT_DIR / "registry")["alpr-river-road-bridge"]
    options = PortalOptions("https://data.riverton.example/", "en", "City of Riverton", "Open data",
                            "open@riverton.example", "https://creativecommons.org/licenses/by/4.0/")
    common = Common(options, "2026-07-22T12:00:00Z", None, TZ, date(2026, 7, 22))
    ledger = [{"deployment_id": d.id, "data_class": "plate_reads", "day": WINDOW.first + timedelta(days=n),
               "collected": 50, "deleted": 50 if n > 10 else 0, "retained": 50, "status": "ok", "next_due": None,
               "declared_period": "P30D", "policy_version": 1} for n in range(30)]
    finding = limit_row("late_deletion", {"days_late": 12.0, "first_due": "2026-07-01T04:00:00Z",
                                          "last_deleted_at": "2026-07-13T04:00:00Z", "records_retained": 0,
                                          "declared_period": "P30D", "grace_days": 1.0},
                        datetime(2026, 5, 31, 4, tzinfo=UTC), datetime(2026, 6, 1, 4, tzinfo=UTC), "f00d")
    finding["deployment_id"], finding["evidence"] = d.id, "[]"
    act = Activity(window=WINDOW, ledger_window=ledger, findings=[finding],
                   numbers=glance.WindowNumbers(1500, 550, 9, 2))
    html = render_deployment(common, d, act, ledger[-1:], [finding], ("signs/a.svg", "signs/b.svg"))
    glance_part = html[html.index('id="glance-heading"'):html.index('class="facts"')]
    assert "Kept 12 days past its limit" in glance_part and 'href="#finding-f00d"' in glance_part
    assert 'id="finding-f00d"' in html and 'id="ledger-plate_reads"' in html
    assert "30 days" in glance_part and "from 2026-08-01: 14 days" in glance_part
    assert "Mecklin County District Attorney" in glance_part and "P30D" not in glance_part
    assert "1,500" in glance_part and 'class="bad">2<' in glance_part  # undeclared access events stand out
    index = next(iter(index_pages(common, Registry({d.id: d}), {d.id: act}, {d.id: 1}, [])))[1]
    assert 'data-verdict="late"' in index and "Kept 12 days past its limit" in index
