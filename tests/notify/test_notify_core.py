"""The pure core of notifications: message ids, texts, tiers, the back-off schedule, the answer classes, and
the webhook gateway's retries against a scripted connection (no network)."""

from __future__ import annotations

import http.client
from dataclasses import dataclass, field
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.notify.backoff import PERMANENT, RETRY, SENT, Backoff, classify
from qrtrace.notify.gateways import Outgoing, WebhookGateway
from qrtrace.notify.messages import (
    ContactNotice,
    Message,
    Place,
    compose_messages,
    contact_tier,
    message_id,
    notices_from_results,
)
from qrtrace.notify.outbox import status_version
from qrtrace.queries.trace import CaseQuery, Contact, Exposure, TraceResult, TraceRules
from qrtrace.settings import VIETNAM

pseudonyms = st.text("0123456789abcdef", min_size=32, max_size=32)
tiers = st.sampled_from(("close", "casual"))
PLACES = {"V1": Place("Chợ Sơn Dương", "Sơn Dương"), "V2": Place("Karaoke Hoa Mai", "Trung Yên")}
JULY_20_0830 = 1_626_744_600_000_000  # 2021-07-20T08:30:00+07:00


@given(pseudonyms, pseudonyms, tiers)
def test_message_ids_are_stable_and_differ_by_every_part(case: str, contact: str, tier: str) -> None:
    mid = message_id(case, contact, tier)
    assert mid == message_id(case, contact, tier) and len(mid) == 32
    other = "close" if tier == "casual" else "casual"
    assert mid != message_id(case, contact, other)
    if case != contact:
        assert mid != message_id(contact, case, tier)


@given(
    st.lists(st.tuples(pseudonyms, pseudonyms, tiers, st.sampled_from(("V1", "V2"))), max_size=40),
    st.sampled_from(("close", "casual", "all")),
)
def test_one_message_per_case_contact_and_tier_whatever_the_repeats(rows: list, choice: str) -> None:
    notices = [ContactNotice("c", case, p, 1, tier, v, JULY_20_0830) for case, p, tier, v in rows]
    twice = compose_messages(notices + notices, PLACES, choice, "vi", "1900 9095", VIETNAM)
    once = compose_messages(notices, PLACES, choice, "vi", "1900 9095", VIETNAM)
    assert twice == once
    expected = {(c, p, t) for c, p, t, _ in rows if choice in ("all", t)}
    assert len(once) == len(expected) == len({m.message_id for m in once})
    assert all(choice in ("all", m.tier) for m in once)


@settings(max_examples=50)
@given(
    pseudonyms,
    pseudonyms,
    tiers,
    st.sampled_from(("vi", "en")),
    st.integers(1_600_000_000_000_000, 1_700_000_000_000_000),
)
def test_texts_hold_venue_time_advice_and_station_never_a_pseudonym(case: str, person: str, tier: str, lang: str,
                                                                     at: int) -> None:  # fmt: skip
    [m] = compose_messages([ContactNotice("F0-1", case, person, 1, tier, "V2", at)], PLACES, "all", lang, "1900 9095",
                           VIETNAM)  # fmt: skip
    assert "Karaoke Hoa Mai" in m.text and "Trạm Y tế Trung Yên" in m.text and "1900 9095" in m.text
    assert case not in m.text and person not in m.text and "F0-1" not in m.text
    from datetime import UTC, datetime

    local = datetime.fromtimestamp(at / 1e6, UTC).astimezone(VIETNAM)
    assert local.strftime("%H:%M %d/%m/%Y") in m.text and "GMT+07:00" in m.text
    advice = {("close", "vi"): "cách ly", ("casual", "vi"): "theo dõi sức khoẻ",
              ("close", "en"): "quarantine", ("casual", "en"): "monitor your health"}[(tier, lang)]  # fmt: skip
    assert advice in m.text
    assert m.text.startswith("Thông báo y tế" if lang == "vi" else "Health notice")


def test_the_first_exposure_gives_the_venue_and_the_tier_defaults_to_casual() -> None:
    exposures = [Exposure("V2", JULY_20_0830 + 3600_000_000, JULY_20_0830 + 7200_000_000, 1, "s", 0),
                 Exposure("V1", JULY_20_0830, JULY_20_0830 + 600_000_000, 1, "s", 0)]  # fmt: skip
    contact = Contact("p", 1, JULY_20_0830, exposures)
    result = TraceResult(CaseQuery("F0-1", "case", 0, 1), TraceRules(), [contact])
    [notice] = notices_from_results([result])
    assert notice.venue_id == "V1" and notice.tier == "casual" and notice.case_person == "case"

    @dataclass
    class Tiered:
        risk: str

    assert contact_tier(Tiered("close")) == "close" and contact_tier(Tiered("odd")) == "casual"


def test_a_close_contact_is_told_of_the_close_exposure_and_f2_of_a_contact_not_a_case() -> None:
    casual_first = Exposure("V1", JULY_20_0830, JULY_20_0830 + 600_000_000, 600_000_000, "s", 0, "casual")
    close_later = Exposure("V2", JULY_20_0830 + 3600_000_000, JULY_20_0830 + 7200_000_000, 3600_000_000, "s", 0,
                           "close")  # fmt: skip
    contact = Contact("p", 1, JULY_20_0830, [casual_first, close_later], "close")
    f2 = Contact("q", 2, JULY_20_0830, [casual_first], "casual")
    result = TraceResult(CaseQuery("F0-1", "case", 0, 1), TraceRules(), [contact, f2])
    close, casual = notices_from_results([result])
    assert (close.venue_id, close.at_us, close.tier) == ("V2", JULY_20_0830 + 3600_000_000, "close")
    assert (casual.venue_id, casual.at_us, casual.tier) == ("V1", JULY_20_0830, "casual")
    for lang, case_words, contact_words in (("vi", "với một ca bệnh", "người tiếp xúc của ca bệnh"),
                                            ("en", "as a confirmed", "a contact of a confirmed")):  # fmt: skip
        m1, m2 = compose_messages([close, casual], PLACES, "all", lang, "1900 9095", VIETNAM)
        assert "Karaoke Hoa Mai" in m1.text and "09:30" in m1.text and case_words in m1.text  # V2, 08:30 + 1 h
        assert contact_words in m2.text and contact_words not in m1.text


@given(st.integers(1, 30), st.floats(0.01, 2), st.floats(1.1, 4), st.floats(0.1, 20), st.floats(0.1, 120))
def test_the_back_off_schedule_is_bounded_and_grows(attempts: int, base: float, factor: float, cap: float,
                                                    total: float) -> None:  # fmt: skip
    waits = Backoff(attempts, base, factor, cap, total).schedule()
    assert len(waits) <= attempts - 1
    assert sum(waits) <= total + 1e-9
    assert all(0 < w <= cap for w in waits)
    grown = waits[:-1]  # only the last wait may be cut short by the total
    assert all(a <= b for a, b in pairwise(grown))


def test_answers_are_classified() -> None:
    assert [classify(s) for s in (200, 202, 400, 401, 404, 408, 422, 429, 500, 503)] == [
        SENT, SENT, PERMANENT, PERMANENT, PERMANENT, RETRY, PERMANENT, RETRY, RETRY, RETRY]  # fmt: skip


def test_a_sent_status_outranks_every_later_write() -> None:
    assert status_version("sent", 1) > status_version("queued", 2**51) > 0
    assert status_version("sent", 1) > status_version("failed", 2**51)
    assert status_version("failed", 5) > status_version("failed", 4)


# -- the webhook gateway's retry loop, over a scripted connection ------------------------------------------


@dataclass
class Script:
    """Answers (a status, or an exception to raise) in order; records what was posted."""

    answers: list
    posted: list = field(default_factory=list)


class ScriptedWebhook(WebhookGateway):
    def __init__(self, script: Script, backoff: Backoff) -> None:
        self.slept: list[float] = []
        super().__init__("http://127.0.0.1:9/sms", backoff, 1, sleep=self.slept.append)
        self.script = script

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", 9)  # never used to connect: post() is scripted

    def post(self, conn, item):  # type: ignore[no-untyped-def]
        self.script.posted.append(item.message.message_id)
        answer = self.script.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer, f"HTTP {answer}", None


def _item() -> Outgoing:
    return Outgoing(Message("m1", "c", "cp", "p", "close", 1, "V1", 0, "vi", "text"), "0912345678")


def test_retries_until_delivered_with_back_off() -> None:
    script = Script([500, ConnectionRefusedError(), 429, 200])
    gw = ScriptedWebhook(script, Backoff(8, 0.1, 2, 5, 60))
    outcome = gw.send_one([None], _item())
    assert outcome.delivered and outcome.attempts == 4
    assert gw.slept == [0.1, 0.2, 0.4]


def test_a_4xx_is_permanent_with_its_reason_and_attempts_are_bounded() -> None:
    gw = ScriptedWebhook(Script([503, 404]), Backoff(8, 0.1, 2, 5, 60))
    outcome = gw.send_one([None], _item())
    assert not outcome.delivered and outcome.attempts == 2 and outcome.reason.startswith("HTTP 404")
    gw = ScriptedWebhook(Script([500] * 10), Backoff(3, 0.1, 2, 5, 60))
    outcome = gw.send_one([None], _item())
    assert not outcome.delivered and outcome.attempts == 3 and "after 3 attempts" in outcome.reason
    assert gw.script.posted == ["m1"] * 3 and sum(gw.slept) <= 60
