from mongolake.cli import main

raise SystemExit(main())
