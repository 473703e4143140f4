{#- Reading the nested shapes Graph lands in the raw layer: a field of a struct, the elements
    of a list (as rows), one field of every element of a list. A struct or list on DuckDB and
    Spark, jsonb on PostgreSQL (loaders/export/postgres.py). Each dispatches on the adapter: `spark__`
    is Spark SQL, `default__` what every other engine shares (macros/_macros.yml). -#}

{#-
    struct_field(expr, path) -> a nested field of a struct, as an expression
        expr: SQL expression of a struct (a column, or an element from unnest_struct_list).
        path: dot-separated field names, case kept, e.g. 'emailAddress.address'.
    struct_field('"from"', 'emailAddress.address') -> "from"."emailAddress"."address"
-#}
{%- macro struct_field(expr, path) -%}
    {{ return(adapter.dispatch('struct_field', 'account_engagement')(expr, path)) }}
{%- endmacro -%}

{%- macro default__struct_field(expr, path) -%}
    {#- dotted access with quoted names (DuckDB, BigQuery, Spark/Databricks, Trino rows) -#}
    {{ expr }}{% for field in path.split('.') %}.{{ adapter.quote(field) }}{% endfor %}
{%- endmacro -%}

{%- macro postgres__struct_field(expr, path) -%}
    {#- the nested values are jsonb (loaders/export/postgres.py): the last field as text -#}
    {%- set fields = path.split('.') -%}
    ({{ expr }}{% for field in fields[:-1] %} -> '{{ field }}'{% endfor %} ->> '{{ fields[-1] }}')
{%- endmacro -%}

{#-
    unnest_struct_list(list_expr, relation_alias, element_alias, position_alias=none)
        -> a join clause, to write right after the FROM item that holds `list_expr`
        list_expr: SQL expression of a list of structs.
        relation_alias: the alias of the rows the clause adds.
        element_alias: the column of those rows holding the element (a struct: read it with
            struct_field).
        position_alias: when given, the column holding the element's 1-based position in the
            list; none (the default) for no such column.

    Expands a list column into one row per element: `relation_alias.element_alias` is the
    element, `relation_alias.position_alias` its position. A null or empty list yields no row
    (inner join).
-#}
{%- macro unnest_struct_list(list_expr, relation_alias, element_alias, position_alias=none) -%}
    {{ return(adapter.dispatch('unnest_struct_list', 'account_engagement')(
        list_expr, relation_alias, element_alias, position_alias
    )) }}
{%- endmacro -%}

{#- Spark SQL (Spark, Databricks) -#}
{%- macro spark__unnest_struct_list(
    list_expr, relation_alias, element_alias, position_alias=none
) -%}
    {#- Spark/Databricks: a lateral view; transform() numbers the elements from 1 -#}
    lateral view inline(transform({{ list_expr }}, (element, i) -> named_struct(
        '{{ element_alias }}', element, '{{ position_alias or "position" }}', i + 1
    ))) {{ relation_alias }}
{%- endmacro -%}

{#- Other adapters (dbt-fabricspark, Synapse) run Spark SQL and do not dispatch to spark__
    themselves. -#}
{%- macro default__unnest_struct_list(
    list_expr, relation_alias, element_alias, position_alias=none
) -%}
    {{ return(account_engagement.spark__unnest_struct_list(
        list_expr, relation_alias, element_alias, position_alias
    )) }}
{%- endmacro -%}

{%- macro postgres__unnest_struct_list(
    list_expr, relation_alias, element_alias, position_alias=none
) -%}
    cross join lateral jsonb_array_elements({{ list_expr }})
    {%- if position_alias is none %} as {{ relation_alias }} ({{ element_alias }})
    {%- else %} with ordinality as {{ relation_alias }} ({{ element_alias }}, {{ position_alias }})
    {%- endif %}
{%- endmacro -%}

{%- macro duckdb__unnest_struct_list(
    list_expr, relation_alias, element_alias, position_alias=none
) -%}
    {%- if position_alias is none -%}
    cross join unnest({{ list_expr }}) as {{ relation_alias }} ({{ element_alias }})
    {%- else -%}
    {#- not `with ordinality`: DuckDB (1.4, 2.0) runs it far slower than a lateral unnest;
        generate_subscripts gives the same 1-based positions -#}
    cross join lateral (
        select
            unnest({{ list_expr }}) as {{ element_alias }},
            generate_subscripts({{ list_expr }}, 1) as {{ position_alias }}
    ) as {{ relation_alias }}
    {%- endif -%}
{%- endmacro -%}

{#-
    explode_list(list_expr) -> a select-list expression
        list_expr: SQL expression of a list of strings (jsonb on PostgreSQL).

    One output row per element of `list_expr` (a null or empty list gives none), written in
    the select list: `select id, {{ explode_list('recipients') }} as recipient from t`. On
    DuckDB this form lets a filter on the elements stay cheap, where the join form
    (unnest_struct_list) is planned as a correlated join.
-#}
{%- macro explode_list(list_expr) -%}
    {{ return(adapter.dispatch('explode_list', 'account_engagement')(list_expr)) }}
{%- endmacro -%}

{#- Spark SQL (Spark, Databricks) -#}
{%- macro spark__explode_list(list_expr) -%}
    explode({{ list_expr }})
{%- endmacro -%}

{#- Other adapters (dbt-fabricspark, Synapse) run Spark SQL and do not dispatch to spark__
    themselves. -#}
{%- macro default__explode_list(list_expr) -%}
    {{ return(account_engagement.spark__explode_list(list_expr)) }}
{%- endmacro -%}

{%- macro duckdb__explode_list(list_expr) -%}
    {#- DuckDB: unnest() in the select list -#}
    unnest({{ list_expr }})
{%- endmacro -%}

{%- macro postgres__explode_list(list_expr) -%}
    jsonb_array_elements_text({{ list_expr }})
{%- endmacro -%}

{#-
    list_of_field(list_expr, path) -> the list of one field of each element of a list, in
    order: list_of_field('"toRecipients"', 'emailAddress.address') -> ["a@x.com", ...]
        list_expr: SQL expression of a list of structs.
        path: dot-separated field names of the field to take from each element, case kept.
-#}
{%- macro list_of_field(list_expr, path) -%}
    {{ return(adapter.dispatch('list_of_field', 'account_engagement')(list_expr, path)) }}
{%- endmacro -%}

{#- Spark SQL (Spark, Databricks) -#}
{%- macro spark__list_of_field(list_expr, path) -%}
    transform({{ list_expr }}, element -> {{ struct_field('element', path) }})
{%- endmacro -%}

{#- Other adapters (dbt-fabricspark, Synapse) run Spark SQL and do not dispatch to spark__
    themselves. -#}
{%- macro default__list_of_field(list_expr, path) -%}
    {{ return(account_engagement.spark__list_of_field(list_expr, path)) }}
{%- endmacro -%}

{%- macro duckdb__list_of_field(list_expr, path) -%}
    list_transform({{ list_expr }}, lambda element: {{ struct_field('element', path) }})
{%- endmacro -%}

{%- macro postgres__list_of_field(list_expr, path) -%}
    {#- a jsonb array of the fields (an element without the field gives none) -#}
    jsonb_path_query_array({{ list_expr }}, '$[*].{{ path }}')
{%- endmacro -%}
