from nextvec.cli import main

main()
