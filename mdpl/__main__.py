from mdpl.cli import main

raise SystemExit(main())
