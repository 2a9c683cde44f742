from bot import cli

raise SystemExit(cli.main())
