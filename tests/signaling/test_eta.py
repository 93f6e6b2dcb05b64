from signaling.eta import DEFAULT_HANDLING_S, average_handling, estimate_wait


def test_nobody_on_duty_has_no_estimate() -> None:
    assert estimate_wait(1, on_duty=0, available=0, handling_s=120) is None


def test_tickets_the_available_staff_can_take_wait_nothing() -> None:
    assert estimate_wait(1, on_duty=2, available=1, handling_s=120) == 0
    assert estimate_wait(2, on_duty=2, available=2, handling_s=120) == 0


def test_each_round_of_staff_ahead_costs_one_handling_time() -> None:
    assert estimate_wait(1, on_duty=1, available=0, handling_s=120) == 120
    assert estimate_wait(3, on_duty=2, available=0, handling_s=100) == 200
    assert estimate_wait(5, on_duty=2, available=1, handling_s=100) == 200


def test_average_handling_ignores_misdials_and_defaults_without_history() -> None:
    assert average_handling([]) == DEFAULT_HANDLING_S
    assert average_handling([2.0, 100.0, 200.0]) == 150.0
