"""Value objects: Decimal exactness, refusals, symbols, client order ids, rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import DomainError, InvalidValue
from domain.values import (
    MONEY_PLACES,
    ClientOrderId,
    Percentage,
    Price,
    Quantity,
    QuoteAmount,
    Symbol,
    SymbolState,
    quantize_money,
    round_down_to_scale,
    to_decimal,
)

# --- to_decimal -------------------------------------------------------------------------

class TestToDecimal:
    def test_string_is_kept_exactly(self) -> None:
        d = to_decimal("0.00009512", "price")
        assert isinstance(d, Decimal)
        assert d == Decimal("0.00009512")
        assert d.as_tuple() == Decimal("0.00009512").as_tuple()

    def test_int_and_decimal_are_accepted(self) -> None:
        assert to_decimal(7, "n") == Decimal(7)
        source = Decimal("1.10")
        assert to_decimal(source, "n").as_tuple() == source.as_tuple()

    def test_surrounding_whitespace_is_ignored(self) -> None:
        assert to_decimal("  12.5 ", "n") == Decimal("12.5")

    def test_float_is_refused_with_a_message_naming_the_value(self) -> None:
        with pytest.raises(InvalidValue, match="price.*float"):
            to_decimal(0.1, "price")

    def test_bool_is_refused(self) -> None:
        with pytest.raises(InvalidValue):
            to_decimal(True, "n")

    @pytest.mark.parametrize("text", ["abc", "", "1,5", "0x10"])
    def test_non_numbers_are_refused(self, text: str) -> None:
        with pytest.raises(InvalidValue, match="not a number"):
            to_decimal(text, "n")

    @pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", Decimal("NaN"), Decimal("Infinity")])
    def test_non_finite_is_refused(self, value: object) -> None:
        with pytest.raises(InvalidValue, match="finite"):
            to_decimal(value, "n")

    @pytest.mark.parametrize("value", [None, [1], object()])
    def test_other_types_are_refused(self, value: object) -> None:
        with pytest.raises(InvalidValue):
            to_decimal(value, "n")

    def test_invalid_value_is_a_domain_error_and_a_value_error(self) -> None:
        with pytest.raises(DomainError):
            to_decimal(1.0, "n")
        with pytest.raises(ValueError):
            to_decimal(1.0, "n")


# --- Price, Quantity, QuoteAmount, Percentage -----------------------------------------

class TestPrice:
    def test_stays_exact(self) -> None:
        p = Price("0.00009512")
        assert isinstance(p.value, Decimal)
        assert p.value == Decimal("0.00009512")
        assert str(p) == "0.00009512"

    def test_arithmetic_on_the_value_is_exact(self) -> None:
        p = Price("0.00009512")
        assert p.value * Decimal("1051303.61") == Decimal("99.9999993832")

    def test_str_is_plain_notation_even_for_an_exponent_decimal(self) -> None:
        assert str(Price(Decimal("9.512E-5"))) == "0.00009512"

    def test_float_is_refused(self) -> None:
        with pytest.raises(InvalidValue):
            Price(0.00009512)  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", ["0", "-0.01", Decimal("0"), Decimal("-1")])
    def test_must_be_positive(self, value: object) -> None:
        with pytest.raises(InvalidValue, match="positive"):
            Price(value)  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", [Decimal("Infinity"), Decimal("NaN"), Decimal("sNaN")])
    def test_non_finite_decimal_is_refused(self, value: Decimal) -> None:
        with pytest.raises(InvalidValue):
            Price(value)

    def test_equal_by_value_and_immutable(self) -> None:
        assert Price("1.5") == Price(Decimal("1.5"))
        with pytest.raises(AttributeError):
            Price("1.5").value = Decimal(2)  # type: ignore[misc]


class TestQuantity:
    def test_zero_is_allowed_and_exact(self) -> None:
        assert Quantity("0").value == 0
        assert str(Quantity("1051303.61")) == "1051303.61"

    def test_negative_refused(self) -> None:
        with pytest.raises(InvalidValue, match="negative"):
            Quantity("-0.00000001")

    def test_float_refused(self) -> None:
        with pytest.raises(InvalidValue):
            Quantity(1.0)  # type: ignore[arg-type]

    def test_infinite_decimal_refused(self) -> None:
        with pytest.raises(InvalidValue):
            Quantity(Decimal("Infinity"))


class TestQuoteAmount:
    def test_defaults_to_usdt_and_prints_with_asset(self) -> None:
        q = QuoteAmount("10.50")
        assert q.asset == "USDT"
        assert q.value == Decimal("10.50")
        assert str(q) == "10.50 USDT"

    def test_other_asset(self) -> None:
        assert str(QuoteAmount("1", "USDC")) == "1 USDC"

    @pytest.mark.parametrize("asset", ["usdt", "", "US-DT", "USDT\n", "A" * 17])
    def test_bad_asset_refused(self, asset: str) -> None:
        with pytest.raises(InvalidValue):
            QuoteAmount("1", asset)

    def test_negative_refused(self) -> None:
        with pytest.raises(InvalidValue):
            QuoteAmount("-1")

    def test_float_and_infinity_refused(self) -> None:
        with pytest.raises(InvalidValue):
            QuoteAmount(1.5)  # type: ignore[arg-type]
        with pytest.raises(InvalidValue):
            QuoteAmount(Decimal("Infinity"))


class TestPercentage:
    def test_fraction_is_exact(self) -> None:
        assert Percentage("12.5").fraction == Decimal("0.125")
        assert Percentage("0.1").fraction == Decimal("0.001")

    def test_str_drops_trailing_zeros_without_exponent(self) -> None:
        assert str(Percentage("12.50")) == "12.5%"
        assert str(Percentage("100")) == "100%"

    def test_float_and_nan_refused(self) -> None:
        with pytest.raises(InvalidValue):
            Percentage(12.5)  # type: ignore[arg-type]
        with pytest.raises(InvalidValue):
            Percentage(Decimal("NaN"))


# --- Symbol ---------------------------------------------------------------------------

class TestSymbol:
    def test_parse_splits_base_and_quote(self) -> None:
        s = Symbol.parse("NEWUSDT")
        assert (s.base, s.quote) == ("NEW", "USDT")
        assert s.code == "NEWUSDT"
        assert str(s) == "NEWUSDT"

    def test_parse_normalises_case_and_whitespace(self) -> None:
        assert Symbol.parse(" newusdt ") == Symbol("NEW", "USDT")

    def test_parse_with_another_quote(self) -> None:
        assert Symbol.parse("ETHBTC", quote="BTC") == Symbol("ETH", "BTC")

    def test_base_may_contain_digits(self) -> None:
        assert Symbol.parse("1INCHUSDT").base == "1INCH"

    def test_longest_base_accepted(self) -> None:
        assert Symbol.parse("A" * 16 + "USDT").base == "A" * 16

    @pytest.mark.parametrize(
        "code",
        [
            "USDT",  # nothing but the quote
            "NEWBTC",  # another quote
            "NEW-USDT",  # separator
            "NEW_USDT",
            "",
            "A" * 17 + "USDT",  # longer than 20
            "NEWUSDT\nX",
            "NEWUSDTX",  # does not end with the quote
        ],
    )
    def test_parse_refuses_bad_codes(self, code: str) -> None:
        with pytest.raises(InvalidValue, match="not a USDT pair"):
            Symbol.parse(code)

    def test_parse_refuses_a_pair_of_another_quote(self) -> None:
        with pytest.raises(InvalidValue, match="not a BTC pair"):
            Symbol.parse("NEWUSDT", quote="BTC")

    @pytest.mark.parametrize(
        ("base", "quote"),
        [("new", "USDT"), ("", "USDT"), ("NEW", ""), ("NE W", "USDT"), ("NEW\n", "USDT"), ("A" * 17, "USDT")],
    )
    def test_constructor_refuses_bad_assets(self, base: str, quote: str) -> None:
        with pytest.raises(InvalidValue):
            Symbol(base, quote)


# --- ClientOrderId --------------------------------------------------------------------

class TestClientOrderId:
    @pytest.mark.parametrize("value", ["a", "A" * 32, "snp0123456789abcdef", "x_y-Z9"])
    def test_accepts_1_to_32_of_the_charset(self, value: str) -> None:
        assert ClientOrderId(value).value == value
        assert str(ClientOrderId(value)) == value

    @pytest.mark.parametrize(
        "value",
        ["", "A" * 33, "has space", "dot.ted", "slash/", "colon:", "é", "abc\n", "\nabc", "abc\t"],
    )
    def test_refuses_anything_else(self, value: str) -> None:
        with pytest.raises(InvalidValue, match="client order id"):
            ClientOrderId(value)


# --- rounding -------------------------------------------------------------------------

class TestRoundDownToScale:
    @pytest.mark.parametrize(
        ("amount", "scale", "expected"),
        [
            ("1.239", 2, "1.23"),
            ("1.2399999", 0, "1"),
            ("499.935", 2, "499.93"),  # half-up would give 499.94
            ("420521.444", 2, "420521.44"),
            ("-1.239", 2, "-1.23"),  # toward zero
            ("0.009", 2, "0.00"),
            ("5", 3, "5.000"),
        ],
    )
    def test_rounds_toward_zero(self, amount: str, scale: int, expected: str) -> None:
        result = round_down_to_scale(Decimal(amount), scale)
        assert result == Decimal(expected)
        assert result.as_tuple().exponent == -scale

    def test_never_rounds_up(self) -> None:
        for text in ("0.99", "0.999999", "1.5", "2.00001"):
            d = Decimal(text)
            assert round_down_to_scale(d, 0) <= d


class TestQuantizeMoney:
    def test_eight_places(self) -> None:
        assert Decimal("0.00000001") == MONEY_PLACES
        result = quantize_money(Decimal("1.123456789"))
        assert result == Decimal("1.12345679")
        assert result.as_tuple().exponent == -8

    @pytest.mark.parametrize(
        ("amount", "expected"),
        [
            ("0.000000005", "0.00000000"),  # half to even: down to 0
            ("0.000000015", "0.00000002"),  # half to even: up to 2
            ("0.000000025", "0.00000002"),  # half to even: down to 2
            ("0.0000000251", "0.00000003"),  # above half: up
            ("-0.000000015", "-0.00000002"),
        ],
    )
    def test_banker_rounding(self, amount: str, expected: str) -> None:
        assert quantize_money(Decimal(amount)) == Decimal(expected)

    def test_already_exact_is_unchanged(self) -> None:
        assert quantize_money(Decimal("99.9999993832")) == Decimal("99.99999938")
        assert quantize_money(Decimal("100")) == Decimal("100.00000000")


# --- SymbolState ----------------------------------------------------------------------

class TestSymbolState:
    def test_holds_codes_and_optional_open_time(self) -> None:
        s = SymbolState(2, 2, 4)
        assert (s.sts, s.st, s.tt, s.open_time_ms) == (2, 2, 4, None)
        assert SymbolState(1, 1, 1, 1_740_830_400_000).open_time_ms == 1_740_830_400_000

    @pytest.mark.parametrize(
        "codes", [(-1, 2, 4), (2, -1, 4), (2, 2, -4), (True, 2, 4), (2, "2", 4), (2, 2, 4.0)]
    )
    def test_refuses_bad_codes(self, codes: tuple[object, object, object]) -> None:
        with pytest.raises(InvalidValue, match="symbol state"):
            SymbolState(*codes)  # type: ignore[arg-type]
