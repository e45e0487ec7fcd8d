"""profile-api: accounts, API keys and callback profiles over REST (contract §2, §3)."""
