{#- The CRM contacts' columns that hold an email address, for the crm_source's staging model
    (models/staging/crm/<crm>/): the var `crm_contact_email_columns` when the user set it,
    else `default` (the columns that CRM names its addresses in). A contact gets one staged
    row per distinct address found in these columns. -#}
{% macro crm_contact_email_columns(default) -%}
    {%- if var('crm_contact_email_column', none) is not none -%}
        {{ exceptions.raise_compiler_error(
            "The var crm_contact_email_column is replaced by crm_contact_email_columns, a list: "
            ~ "set crm_contact_email_columns: ['" ~ var('crm_contact_email_column')
            ~ "'] instead (docs/configuration.md).") }}
    {%- endif -%}
    {%- set columns = var('crm_contact_email_columns', none) -%}
    {%- if columns is none -%}
        {{ return(default) }}
    {%- endif -%}
    {%- if columns is string or columns is mapping or columns | length == 0 -%}
        {{ exceptions.raise_compiler_error(
            "The var crm_contact_email_columns must be a non-empty list of column names, "
            ~ "e.g. [email], not " ~ columns ~ ".") }}
    {%- endif -%}
    {{ return(columns) }}
{%- endmacro %}
