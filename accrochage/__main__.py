from accrochage.cli import entry

entry()
