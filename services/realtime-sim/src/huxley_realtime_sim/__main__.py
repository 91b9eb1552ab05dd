def main() -> None:
    raise SystemExit("huxley-realtime-sim: not implemented yet")


if __name__ == "__main__":
    main()
