"""Date operators with time zones, formatting and parsing."""
from __future__ import annotations

import datetime as dt

from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from tests.query._exprutil import ev, fails

UTC = dt.timezone.utc
D = dt.datetime(2014, 1, 1, 8, 15, 39, 736000, tzinfo=UTC)  # the MongoDB docs' example date


def test_date_parts_documented_example():
    doc = {"date": D}
    expected = {"$year": 2014, "$month": 1, "$dayOfMonth": 1, "$hour": 8, "$minute": 15, "$second": 39,
                "$millisecond": 736, "$dayOfYear": 1, "$dayOfWeek": 4, "$week": 0, "$isoWeek": 1,
                "$isoWeekYear": 2014, "$isoDayOfWeek": 3}
    for op, want in expected.items():
        assert ev({op: "$date"}, doc) == want, op
        assert ev({op: ["$date"]}, doc) == want, op
        assert ev({op: {"date": "$date"}}, doc) == want, op


def test_date_parts_timezones():
    doc = {"date": dt.datetime(2017, 1, 1, 1, 0, 0, tzinfo=UTC)}
    assert ev({"$hour": {"date": "$date", "timezone": "America/New_York"}}, doc) == 20
    assert ev({"$dayOfMonth": {"date": "$date", "timezone": "America/New_York"}}, doc) == 31
    assert ev({"$minute": {"date": "$date", "timezone": "+05:30"}}, doc) == 30
    assert ev({"$hour": {"date": "$date", "timezone": "-0430"}}, doc) == 20
    assert ev({"$hour": {"date": "$date", "timezone": None}}, doc) is None
    fails({"$hour": {"date": "$date", "timezone": "Mars/Base"}}, 40485, doc)
    fails({"$hour": {"date": "$date", "bogus": 1}}, 40535, doc)
    assert ev({"$year": "$nope"}, doc) is None
    fails({"$year": "x"}, 16006)


def test_date_like_inputs():
    oid = ObjectId.from_datetime(dt.datetime(2020, 2, 3, tzinfo=UTC))
    assert ev({"$month": oid}) == 2
    assert ev({"$year": Timestamp(0, 1)}) == 1970


def test_date_to_string():
    doc = {"date": D}
    assert ev({"$dateToString": {"format": "%Y-%m-%d", "date": "$date"}}, doc) == "2014-01-01"
    assert ev({"$dateToString": {"format": "%H:%M:%S:%L%z", "date": "$date", "timezone": "America/New_York"}},
              doc) == "03:15:39:736-0500"
    assert ev({"$dateToString": {"format": "%Z", "date": "$date", "timezone": "America/New_York"}}, doc) == "-300"
    assert ev({"$dateToString": {"date": "$date"}}, doc) == "2014-01-01T08:15:39.736Z"
    assert ev({"$dateToString": {"format": "%j %w %u %U %V %G %%", "date": "$date"}}, doc) == \
        "001 4 3 00 01 2014 %"
    assert ev({"$dateToString": {"format": "%b %B", "date": "$date"}}, doc) == "Jan January"
    assert ev({"$dateToString": {"date": "$nope", "onNull": "none"}}, doc) == "none"
    assert ev({"$dateToString": {"date": "$nope"}}, doc) is None
    fails({"$dateToString": {"format": "%Q", "date": "$date"}}, 18536, doc)
    fails({"$dateToString": {"format": 5, "date": "$date"}}, 18533, doc)


def test_date_from_string():
    assert ev({"$dateFromString": {"dateString": "2017-02-08T12:10:40.787"}}) == \
        dt.datetime(2017, 2, 8, 12, 10, 40, 787000, tzinfo=UTC)
    assert ev({"$dateFromString": {"dateString": "2017-02-08T12:10:40.787", "timezone": "America/New_York"}}) == \
        dt.datetime(2017, 2, 8, 17, 10, 40, 787000, tzinfo=UTC)
    assert ev({"$dateFromString": {"dateString": "2017-02-08T12:10:40+02:00"}}) == \
        dt.datetime(2017, 2, 8, 10, 10, 40, tzinfo=UTC)
    assert ev({"$dateFromString": {"dateString": "15-06-2018", "format": "%d-%m-%Y"}}) == \
        dt.datetime(2018, 6, 15, tzinfo=UTC)
    assert ev({"$dateFromString": {"dateString": "06/15/2018"}}) == dt.datetime(2018, 6, 15, tzinfo=UTC)
    assert ev({"$dateFromString": {"dateString": "2017-02-08"}}) == dt.datetime(2017, 2, 8, tzinfo=UTC)
    assert ev({"$dateFromString": {"dateString": "Feb 8 2017"}}) == dt.datetime(2017, 2, 8, tzinfo=UTC)
    assert ev({"$dateFromString": {"dateString": "not a date", "onError": "bad"}}) == "bad"
    assert ev({"$dateFromString": {"dateString": None, "onNull": "nul"}}) == "nul"
    assert ev({"$dateFromString": {"dateString": 5, "onError": "bad"}}) == "bad"
    fails({"$dateFromString": {"dateString": "2017-13-45"}}, 241)
    fails({"$dateFromString": {"dateString": "2017-02-08T12:10:40Z", "timezone": "Europe/London"}}, 241)


def test_date_to_and_from_parts():
    doc = {"date": dt.datetime(2017, 1, 1, 1, 29, 9, 123000, tzinfo=UTC)}
    assert ev({"$dateToParts": {"date": "$date"}}, doc) == \
        {"year": 2017, "month": 1, "day": 1, "hour": 1, "minute": 29, "second": 9, "millisecond": 123}
    assert ev({"$dateToParts": {"date": "$date", "timezone": "America/New_York"}}, doc) == \
        {"year": 2016, "month": 12, "day": 31, "hour": 20, "minute": 29, "second": 9, "millisecond": 123}
    assert ev({"$dateToParts": {"date": "$date", "iso8601": True}}, doc) == \
        {"isoWeekYear": 2016, "isoWeek": 52, "isoDayOfWeek": 7, "hour": 1, "minute": 29, "second": 9,
         "millisecond": 123}
    assert ev({"$dateFromParts": {"year": 2017, "month": 2, "day": 8, "hour": 12}}) == \
        dt.datetime(2017, 2, 8, 12, tzinfo=UTC)
    assert ev({"$dateFromParts": {"isoWeekYear": 2017, "isoWeek": 6, "isoDayOfWeek": 3, "hour": 12}}) == \
        dt.datetime(2017, 2, 8, 12, tzinfo=UTC)
    assert ev({"$dateFromParts": {"year": 2016, "month": 12, "day": 31, "hour": 23, "minute": 46, "second": 12,
                                  "timezone": "America/New_York"}}) == dt.datetime(2017, 1, 1, 4, 46, 12, tzinfo=UTC)
    assert ev({"$dateFromParts": {"year": 2017, "month": 14, "day": 1}}) == dt.datetime(2018, 2, 1, tzinfo=UTC)
    assert ev({"$dateFromParts": {"year": 2017, "month": 1, "day": 0}}) == dt.datetime(2016, 12, 31, tzinfo=UTC)
    assert ev({"$dateFromParts": {"year": "$nope"}}) is None
    fails({"$dateFromParts": {"year": 0}}, 40523)
    fails({"$dateFromParts": {"year": 2017, "isoWeek": 1}}, 40489)
    fails({"$dateFromParts": {"month": 1}}, 40516)
    fails({"$dateFromParts": {"year": 2017, "month": "x"}}, 40515)


def test_date_trunc():
    d = dt.datetime(2020, 11, 13, 17, 43, 27, tzinfo=UTC)
    doc = {"d": d}
    assert ev({"$dateTrunc": {"date": "$d", "unit": "year"}}, doc) == dt.datetime(2020, 1, 1, tzinfo=UTC)
    assert ev({"$dateTrunc": {"date": "$d", "unit": "quarter"}}, doc) == dt.datetime(2020, 10, 1, tzinfo=UTC)
    assert ev({"$dateTrunc": {"date": "$d", "unit": "month", "binSize": 6}}, doc) == \
        dt.datetime(2020, 7, 1, tzinfo=UTC)
    assert ev({"$dateTrunc": {"date": "$d", "unit": "week"}}, doc) == dt.datetime(2020, 11, 8, tzinfo=UTC)
    assert ev({"$dateTrunc": {"date": "$d", "unit": "week", "startOfWeek": "Monday"}}, doc) == \
        dt.datetime(2020, 11, 9, tzinfo=UTC)
    assert ev({"$dateTrunc": {"date": "$d", "unit": "day"}}, doc) == dt.datetime(2020, 11, 13, tzinfo=UTC)
    assert ev({"$dateTrunc": {"date": "$d", "unit": "hour", "binSize": 2}}, doc) == \
        dt.datetime(2020, 11, 13, 16, tzinfo=UTC)
    assert ev({"$dateTrunc": {"date": "$d", "unit": "minute", "binSize": 15}}, doc) == \
        dt.datetime(2020, 11, 13, 17, 30, tzinfo=UTC)
    assert ev({"$dateTrunc": {"date": "$d", "unit": "day", "timezone": "America/New_York"}}, doc) == \
        dt.datetime(2020, 11, 13, 5, tzinfo=UTC)
    assert ev({"$dateTrunc": {"date": "$d", "unit": "hour", "timezone": "+05:30"}}, doc) == \
        dt.datetime(2020, 11, 13, 17, 30, tzinfo=UTC)
    assert ev({"$dateTrunc": {"date": "$nope", "unit": "day"}}, doc) is None
    fails({"$dateTrunc": {"date": "$d", "unit": "day", "binSize": 0}}, 5439018, doc)
    fails({"$dateTrunc": {"date": "$d", "unit": "fortnight"}}, 2, doc)


def test_date_add_subtract_diff():
    d = dt.datetime(2021, 1, 31, 12, tzinfo=UTC)
    doc = {"d": d}
    assert ev({"$dateAdd": {"startDate": "$d", "unit": "month", "amount": 1}}, doc) == \
        dt.datetime(2021, 2, 28, 12, tzinfo=UTC)
    assert ev({"$dateAdd": {"startDate": "$d", "unit": "day", "amount": 3}}, doc) == \
        dt.datetime(2021, 2, 3, 12, tzinfo=UTC)
    assert ev({"$dateAdd": {"startDate": "$d", "unit": "hour", "amount": -2}}, doc) == \
        dt.datetime(2021, 1, 31, 10, tzinfo=UTC)
    assert ev({"$dateSubtract": {"startDate": "$d", "unit": "week", "amount": 1}}, doc) == \
        dt.datetime(2021, 1, 24, 12, tzinfo=UTC)
    # across a DST change, a "day" is a calendar day in the given time zone
    dst = dt.datetime(2021, 3, 13, 12, tzinfo=UTC)
    assert ev({"$dateAdd": {"startDate": dst, "unit": "day", "amount": 1, "timezone": "America/New_York"}}) == \
        dt.datetime(2021, 3, 14, 11, tzinfo=UTC)
    fails({"$dateAdd": {"startDate": "$d", "unit": "day", "amount": 1.5}}, 5166405, doc)
    a, b = dt.datetime(2020, 12, 31, 23, tzinfo=UTC), dt.datetime(2021, 1, 1, 1, tzinfo=UTC)
    for unit, want in (("year", 1), ("quarter", 1), ("month", 1), ("day", 1), ("hour", 2), ("minute", 120)):
        assert ev({"$dateDiff": {"startDate": a, "endDate": b, "unit": unit}}) == want, unit
    assert ev({"$dateDiff": {"startDate": a, "endDate": b, "unit": "year", "timezone": "America/New_York"}}) == 0
    sun = dt.datetime(2021, 1, 3, tzinfo=UTC)
    sat = dt.datetime(2021, 1, 2, tzinfo=UTC)
    assert ev({"$dateDiff": {"startDate": sat, "endDate": sun, "unit": "week"}}) == 1
    assert ev({"$dateDiff": {"startDate": sat, "endDate": sun, "unit": "week", "startOfWeek": "mon"}}) == 0
    assert ev({"$dateDiff": {"startDate": None, "endDate": sun, "unit": "week"}}) is None
