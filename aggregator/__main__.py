from aggregator.cli import main

if __name__ == "__main__":  # parse workers are spawned: they must not run the CLI again
    main()
