from accrochage.launch import entry

entry()
