"""The CRM: accounts and contacts (`python -m loaders crm`), one module per kind of source."""
