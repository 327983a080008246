"""The golden comparison tolerates a CPU's float rounding and nothing else."""

from pipeline.golden import FLOAT_RTOL, mismatches

RUN = {"recall@20": 0.3227, "selected_epoch": 4, "method": "unlearnrec", "deleted": {"q05": 0.0776113, "n": 59}}


def with_deleted(**fields):
    return {**RUN, "deleted": {**RUN["deleted"], **fields}}


def test_rounding_in_the_sixth_digit_is_the_same_result():
    rounded = {**with_deleted(q05=0.0776112), "recall@20": 0.3227 * (1 + FLOAT_RTOL / 10)}
    assert mismatches(RUN, rounded) == []


def test_a_moved_metric_an_integer_a_string_or_a_missing_key_is_named():
    assert mismatches(RUN, {**RUN, "recall@20": 0.3230}) == ["/recall@20 (0.3227 != 0.323)"]
    assert mismatches(RUN, {**RUN, "selected_epoch": 5}) == ["/selected_epoch (4 != 5)"]
    assert mismatches(RUN, {**RUN, "selected_epoch": 4.0}) == ["/selected_epoch (4 != 4.0)"]
    assert mismatches(RUN, {**RUN, "method": "none"}) == ["/method ('unlearnrec' != 'none')"]
    assert mismatches(RUN, with_deleted(n=58)) == ["/deleted/n (59 != 58)"]
    assert mismatches(RUN, {k: v for k, v in RUN.items() if k != "deleted"}) == ["/deleted (in one file only)"]
    assert mismatches([1.0, 2.0], [1.0]) == [" (length 2 != 1)"]
