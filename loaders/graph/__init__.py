"""Microsoft Graph: mail and calendar metadata of the selected mailboxes (`python -m loaders
graph`), from sign-in to landing."""
