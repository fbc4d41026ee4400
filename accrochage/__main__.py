from accrochage.cli import main

main()
