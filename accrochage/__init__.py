"""accrochage: continuous CDC (SI CPF) accrochage for French certifying bodies."""

__version__ = "0.1.0"
