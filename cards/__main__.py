from cards.cli import main

raise SystemExit(main())
