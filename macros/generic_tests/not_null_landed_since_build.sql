{#- Generic test: `column_name` is not null on the rows of `model` landed since
    `built_model`'s last build (_generic_tests.yml). -#}
{%- test not_null_landed_since_build(model, column_name, built_model) -%}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null and {{ landed_since_build_of(built_model) }}
{%- endtest -%}
