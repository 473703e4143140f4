{#- generate_schema_name(custom_schema_name, node) -> the schema a node builds in (_macros.yml).
    As the root project (the README's commands, every test) this is dbt's own rule, so the
    output tables stay in the target's schema, where BI tools and the cards read them.
    Installed as a package, dbt calls a package's own generate_schema_name for the package's
    nodes (dbt/parser/base.py, RelationUpdate): ours then build in the custom schema, the
    node's `+schema` when the user set one, else var `account_engagement_schema`, else
    `account_engagement`; so a model of the user's project named like ours (`office`) never
    lands on the same table. -#}
{%- macro generate_schema_name(custom_schema_name=none, node=none) -%}
    {%- set custom = custom_schema_name -%}
    {%- if project_name != 'account_engagement' and node is not none
        and node.package_name == 'account_engagement' -%}
        {%- set custom = custom_schema_name
            or var('account_engagement_schema', none)
            or 'account_engagement' -%}
    {%- endif -%}
    {{ return(dbt.generate_schema_name(custom, node)) }}
{%- endmacro -%}
