"""The Dataverse loader: `account` and `contact` through the Web API v9.2 into raw_dataverse."""
