{#- publish_parquet() -> SQL for the `on-run-end` hook: after `dbt build` / `dbt run`, each
    table of var `publish_parquet_tables` that exists copied to `$PARQUET_DIR/<table>.parquet`
    (DuckDB: a temporary file renamed, never half a file) or, on Spark, to a folder
    `$PARQUET_DIR/<table>/` of part files; nothing on other adapters, nor when var
    `account_engagement_publish_parquet` is off (_macros.yml). -#}
{%- macro publish_parquet() -%}
    {{ return(adapter.dispatch('publish_parquet', 'account_engagement')()) }}
{%- endmacro -%}

{%- macro default__publish_parquet() -%}
{%- endmacro -%}

{%- macro duckdb__publish_parquet() -%}
    {%- if execute and flags.WHICH in ('build', 'run') and publish_parquet_enabled() -%}
        {%- set folder = parquet_publish_folder() -%}
        {%- set statements = [] -%}
        {%- for table in var('publish_parquet_tables', []) -%}
            {%- set relation = parquet_publish_relation(table) -%}
            {%- if relation is not none -%}
                {%- set target_file = folder ~ '/' ~ table ~ '.parquet' -%}
                {%- do statements.append(
                    "copy (select * from " ~ relation ~ ") to '"
                    ~ target_file | replace("'", "''")
                    ~ "' (format parquet, compression zstd, use_tmp_file true)"
                ) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if statements -%}
            {{ log(
                "Publishing " ~ statements | length ~ " tables to Parquet in " ~ folder,
                info=true
            ) }}
        {%- endif -%}
        {{ statements | join(";\n") }}
    {%- endif -%}
{%- endmacro -%}

{%- macro spark__publish_parquet() -%}
    {#- one statement per call over Thrift; a relative folder is the server's (make
        spark-server starts it in the project root) -#}
    {%- set tables = var('publish_parquet_tables', [])
        if execute and flags.WHICH in ('build', 'run') and publish_parquet_enabled() else [] -%}
    {%- for table in tables -%}
        {%- set relation = parquet_publish_relation(table) -%}
        {%- if relation is not none -%}
            {%- do run_query(
                "insert overwrite directory '" ~ parquet_publish_folder() ~ "/" ~ table
                ~ "' using parquet select * from " ~ relation
            ) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro -%}

{#- Whether this run publishes: var `account_engagement_publish_parquet`, true or false; when
    it is not set (null), true as the root project and false as a package, whose hooks run in
    the user's every `dbt run` and should not write files the user did not ask for. -#}
{%- macro publish_parquet_enabled() -%}
    {%- set configured = var('account_engagement_publish_parquet', none) -%}
    {%- if configured is none -%}
        {{ return(project_name == 'account_engagement') }}
    {%- endif -%}
    {%- if configured is not boolean -%}
        {{ exceptions.raise_compiler_error(
            "The var account_engagement_publish_parquet must be true or false, got '"
            ~ configured ~ "': set it to true to publish the Parquet copies, false not to."
        ) }}
    {%- endif -%}
    {{ return(configured) }}
{%- endmacro -%}

{#- The Parquet folder: $PARQUET_DIR, else `parquet/` beside the warehouse. -#}
{%- macro parquet_publish_folder() -%}
    {%- set configured = env_var('PARQUET_DIR', '') | trim -%}
    {%- if configured -%}
        {{ return(configured.rstrip('/')) }}
    {%- endif -%}
    {%- set warehouse = target.path or env_var('DUCKDB_PATH', 'warehouse.duckdb') -%}
    {%- set warehouse = warehouse | replace('\\', '/') -%}
    {%- if '/' in warehouse -%}
        {{ return(warehouse.rsplit('/', 1)[0] ~ '/parquet') }}
    {%- endif -%}
    {{ return('parquet') }}
{%- endmacro -%}

{#- The warehouse relation of this project's model `name`, or none when it is not built. The
    package's name, not `project_name`: installed as a package, `project_name` is the user's
    project, and their own model of the same name (an `office` of theirs) is not ours. -#}
{%- macro parquet_publish_relation(name) -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and node.name == name
            and node.package_name == 'account_engagement' -%}
            {{ return(adapter.get_relation(
                database=node.database, schema=node.schema, identifier=node.alias
            )) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro -%}
