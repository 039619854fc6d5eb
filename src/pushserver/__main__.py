from pushserver.cli import main

main()
