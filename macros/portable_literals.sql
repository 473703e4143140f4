{#- Values written the same way on every engine, for models and unit-test fixtures. -#}

{#-
    sorted_lines(expression) -> an aggregate: the group's values of `expression` (a string),
    sorted, joined by newlines (chr(10): on Spark a backslash in a string literal is itself,
    so '\n' would be two characters).
-#}
{%- macro sorted_lines(expression) -%}
    {{ return(adapter.dispatch('sorted_lines', 'account_engagement')(expression)) }}
{%- endmacro -%}

{%- macro default__sorted_lines(expression) -%}
    {{ dbt.listagg(expression, 'chr(10)', 'order by ' ~ expression) }}
{%- endmacro -%}

{%- macro spark__sorted_lines(expression) -%}
    {#- dbt-spark's listagg drops the order by (with a warning): sort the collected list -#}
    array_join(array_sort(collect_list({{ expression }})), chr(10))
{%- endmacro -%}

{#-
    nested_literal(value, type) -> a literal of a nested Graph property, typed as the raw layer
    holds it on this engine: a struct or a list on DuckDB and Spark (as Graph's JSON is typed
    by the loader and written to Parquet by the export), jsonb on Postgres (the export's
    to_json). For unit-test fixtures of the models that read those columns.

    value: a Jinja dict, list, string, number, boolean or none;
    type: the same shape of type names: 'string', 'boolean', a dict {field: type} (every field,
        in order; a field missing from a value is null), a list [element type].
    nested_literal([{'emailAddress': {'name': 'Jane', 'address': 'jane@x.com'}}],
                   [{'emailAddress': {'name': 'string', 'address': 'string'}}])
-#}
{%- macro nested_literal(value, type) -%}
    {{ return(adapter.dispatch('nested_literal', 'account_engagement')(value, type)) }}
{%- endmacro -%}

{%- macro default__nested_literal(value, type) -%}
    cast({{ nested_value(value, type) }} as {{ nested_type(type) }})
{%- endmacro -%}

{%- macro postgres__nested_literal(value, type) -%}
    {%- if value is none -%}
        cast(null as jsonb)
    {%- else -%}
        cast('{{ tojson(nested_json(value, type)) | replace("'", "''") }}' as jsonb)
    {%- endif -%}
{%- endmacro -%}

{#- nested_json(value, type) -> `value` with every field of its type (null where missing), as
    DuckDB's to_json writes a struct -#}
{%- macro nested_json(value, type) -%}
    {%- if value is none -%}
        {{ return(none) }}
    {%- elif type is mapping -%}
        {%- set fields = {} -%}
        {%- for field, field_type in type.items() -%}
            {%- do fields.update({field: nested_json(value.get(field), field_type)}) -%}
        {%- endfor -%}
        {{ return(fields) }}
    {%- elif type is string -%}
        {{ return(value) }}
    {%- else -%}
        {{ return(nested_json_list(value, type[0])) }}
    {%- endif -%}
{%- endmacro -%}

{%- macro nested_json_list(values, element_type) -%}
    {%- set elements = [] -%}
    {%- for element in values -%}
        {%- do elements.append(nested_json(element, element_type)) -%}
    {%- endfor -%}
    {{ return(elements) }}
{%- endmacro -%}

{#- nested_value(value, type) -> the literal, before its outer cast (DuckDB, Spark) -#}
{%- macro nested_value(value, type) -%}
    {{ return(adapter.dispatch('nested_value', 'account_engagement')(value, type)) }}
{%- endmacro -%}

{%- macro default__nested_value(value, type) -%}
    {%- if value is none -%}
        cast(null as {{ nested_type(type) }})
    {%- elif type is mapping -%}
        {%- set ns = namespace(fields=[]) -%}
        {%- for field, field_type in type.items() -%}
            {%- set ns.fields = ns.fields + ["'" ~ field ~ "': " ~ nested_value(value.get(field), field_type)] -%}
        {%- endfor -%}
        {{ '{' ~ ns.fields | join(', ') ~ '}' }}
    {%- elif type is string -%}
        {{ scalar_literal(value) }}
    {%- else -%}
        {%- set ns = namespace(elements=[]) -%}
        {%- for element in value -%}
            {%- set ns.elements = ns.elements + [nested_value(element, type[0])] -%}
        {%- endfor -%}
        [{{ ns.elements | join(', ') }}]
    {%- endif -%}
{%- endmacro -%}

{%- macro spark__nested_value(value, type) -%}
    {%- if value is none -%}
        cast(null as {{ nested_type(type) }})
    {%- elif type is mapping -%}
        {%- set ns = namespace(fields=[]) -%}
        {%- for field, field_type in type.items() -%}
            {%- set ns.fields = ns.fields + ["'" ~ field ~ "', " ~ nested_value(value.get(field), field_type)] -%}
        {%- endfor -%}
        named_struct({{ ns.fields | join(', ') }})
    {%- elif type is string -%}
        {{ scalar_literal(value) }}
    {%- else -%}
        {%- set ns = namespace(elements=[]) -%}
        {%- for element in value -%}
            {%- set ns.elements = ns.elements + [nested_value(element, type[0])] -%}
        {%- endfor -%}
        array({{ ns.elements | join(', ') }})
    {%- endif -%}
{%- endmacro -%}

{%- macro scalar_literal(value) -%}
    {%- if value is sameas true or value is sameas false -%}
        {{ 'true' if value else 'false' }}
    {%- elif value is number -%}
        {{ value }}
    {%- else -%}
        '{{ value | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro -%}

{#- nested_type(type) -> the engine's name of `type` (DuckDB, Spark) -#}
{%- macro nested_type(type) -%}
    {{ return(adapter.dispatch('nested_type', 'account_engagement')(type)) }}
{%- endmacro -%}

{%- macro default__nested_type(type) -%}
    {%- if type is mapping -%}
        {%- set ns = namespace(fields=[]) -%}
        {%- for field, field_type in type.items() -%}
            {%- set ns.fields = ns.fields + [adapter.quote(field) ~ ' ' ~ nested_type(field_type)] -%}
        {%- endfor -%}
        struct({{ ns.fields | join(', ') }})
    {%- elif type is string -%}
        {{ 'varchar' if type == 'string' else type }}
    {%- else -%}
        {{ nested_type(type[0]) }}[]
    {%- endif -%}
{%- endmacro -%}

{%- macro spark__nested_type(type) -%}
    {%- if type is mapping -%}
        {%- set ns = namespace(fields=[]) -%}
        {%- for field, field_type in type.items() -%}
            {%- set ns.fields = ns.fields + [field ~ ': ' ~ nested_type(field_type)] -%}
        {%- endfor -%}
        struct<{{ ns.fields | join(', ') }}>
    {%- elif type is string -%}
        {{ type }}
    {%- else -%}
        array<{{ nested_type(type[0]) }}>
    {%- endif -%}
{%- endmacro -%}
