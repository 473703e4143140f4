from account_engagement_cards.cli import main

raise SystemExit(main())
