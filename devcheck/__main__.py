from devcheck.cli import main

main()
