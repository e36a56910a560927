from mnmcu.cli import main

main()
