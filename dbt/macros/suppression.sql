{#-
  Small-cell suppression, reusable by every certified model.

  small_cell_threshold(): the threshold of the certified build: environment variable TRIVSEL_SMALL_CELL_THRESHOLD
  (the certify task sets it to settings.small_cell_threshold from config/municipalities.yml), else dbt var
  small_cell_threshold (default 5; `dbt --vars` by hand). Not a dbt var from certify: dbt hashes its CLI vars
  into the partial-parse state, so a var made every certified build parse the whole project again. Read only
  when executing (`execute`), as trivsel_run_id() reads the run id: an env_var read while parsing is
  recorded in the parse state too.

  is_small(expr): true when a count is 1 … threshold−1 (0 is published: nobody is identified by it).

  secondary_suppression(relation, partition_by, primary, size, is_total):
    `relation` is a CTE/relation of cells; rows of one partition are the cells of one table margin,
    optionally with the margin's total row (is_total). `primary` is the primary suppression flag.
    Returns relation's columns plus `suppressed`:
      - every primarily suppressed cell;
      - if exactly one non-total cell of a partition that has a total (or whose cells are summed
        elsewhere, has_implicit_total=true) is suppressed, the next smallest non-zero published cell
        too, so the suppressed one cannot be recovered as total − the other cells;
      - if no other cell exists to hide, the total itself.
    Apply it once per margin (e.g. answer categories within an item, then municipalities within 'ALL'),
    feeding one pass's `suppressed` into the next pass's `primary`.
-#}
{% macro small_cell_threshold() -%}
    {%- if execute -%}
    {{ (env_var('TRIVSEL_SMALL_CELL_THRESHOLD', '') or var('small_cell_threshold', 5)) | int }}
    {%- else -%}
    {{ var('small_cell_threshold', 5) | int }}
    {%- endif -%}
{%- endmacro %}

{% macro is_small(expr) -%}
    coalesce(({{ expr }}) between 1 and {{ small_cell_threshold() }} - 1, false)
{%- endmacro %}

{% macro secondary_suppression(relation, partition_by, primary, size, is_total='false', has_implicit_total=false) -%}
{%- set part = partition_by | join(', ') -%}
select
    _flagged.*,
    (
        _primary
        or (
            _n_primary_cells = 1
            and (_has_total or {{ 'true' if has_implicit_total else 'false' }})
            and not _is_total
            and not _primary
            and coalesce(_size, 0) > 0
            and _candidate_rank = 1
        )
        or (
            _is_total
            and _n_primary_cells = 1
            and _n_candidates = 0
        )
    ) as suppressed
from (
    select
        _cells.*,
        count(*) filter (where _primary and not _is_total) over (partition by {{ part }}) as _n_primary_cells,
        bool_or(_is_total) over (partition by {{ part }}) as _has_total,
        count(*) filter (where not _primary and not _is_total and coalesce(_size, 0) > 0)
            over (partition by {{ part }}) as _n_candidates,
        row_number() over (
            partition by {{ part }}, (_primary or _is_total or coalesce(_size, 0) = 0)
            order by _size, _tiebreak
        ) as _candidate_rank
    from (
        select
            _src.*,
            coalesce(({{ primary }}), false) as _primary,
            coalesce(({{ is_total }}), false) as _is_total,
            ({{ size }}) as _size,
            row_number() over () as _tiebreak
        from {{ relation }} as _src
    ) as _cells
) as _flagged
{%- endmacro %}

{#- The columns a certified model selects from a secondary_suppression() result, without its helpers. -#}
{% macro suppression_helper_columns() -%}
_primary, _is_total, _size, _tiebreak, _n_primary_cells, _has_total, _n_candidates, _candidate_rank
{%- endmacro %}

{#-
  distribution_all_or_nothing(relation, distribution, margin): the answer-distribution rule (docs/disclosure.md).
    `relation` has municipality_code, n_answers and is_total (one total row per distribution); `distribution`
    lists the keys of one distribution (scope × wave × item), `margin` the keys within which 'ALL' is the sum
    of the municipalities (wave or round × item).
    - a total (respondents to the item) of 1 … threshold−1 is suppressed, with secondary suppression across
      the municipalities of 'ALL' (secondary_suppression);
    - a distribution is withheld whole (every category) when one of its categories is small or its total is
      suppressed: no category can then be a difference of published ones;
    - 'ALL' is withheld whole when one of its municipalities is, else ALL − the others would give it.
    Returns relation's columns plus `suppressed`.
-#}
{% macro distribution_all_or_nothing(relation, distribution, margin) -%}
{%- set dist = distribution | join(', ') -%}
{%- set marg = margin | join(', ') -%}
{%- set dist_src = [] -%}
{%- for key in distribution %}{% do dist_src.append('_src.' ~ key) %}{% endfor -%}
select
    _hidden.*,
    case when _hidden.is_total then _hidden._total_suppressed else _hidden._distribution_hidden end as suppressed
from (
    select
        _own.*,
        _own._own_hidden or (
            _own.municipality_code = 'ALL'
            and bool_or(_own._own_hidden and _own.municipality_code <> 'ALL') over (partition by {{ marg }})
        ) as _distribution_hidden
    from (
        select
            _with_totals.*,
            bool_or(
                (not _with_totals.is_total and {{ is_small('_with_totals.n_answers') }})
                or (_with_totals.is_total and _with_totals._total_suppressed)
            ) over (partition by {{ dist }}) as _own_hidden
        from (
            select
                _src.*,
                coalesce(bool_or(_src.is_total and _totals.suppressed) over (partition by {{ dist_src | join(', ') }}),
                         false)
                    as _total_suppressed
            from {{ relation }} as _src
            left join (
                {{ secondary_suppression('(select * from ' ~ relation ~ ' where is_total)', margin,
                                         primary=is_small('n_answers'), size='n_answers',
                                         is_total="municipality_code = 'ALL'") }}
            ) as _totals
                on _src.is_total
                {%- for key in distribution %}
                and _totals.{{ key }} is not distinct from _src.{{ key }}
                {%- endfor %}
                {#- the same keys as one null-safe text, an equality PostgreSQL can hash: `is not distinct from`
                    alone is a join filter, a nested loop of every cell against every total (quadratic in the
                    waves of history: 84 s of the certified build at scale 0.05 with two waves). Implied by the
                    conditions above, so the rows joined are the same. #}
                and {{ null_safe_key('_totals', distribution) }} = {{ null_safe_key('_src', distribution) }}
        ) as _with_totals
    ) as _own
) as _hidden
{%- endmacro %}

{#- The keys of `alias` as one text that is equal exactly when every key is equal or both are null (each key
    as its text with a null marker and its length, so no two different key tuples give the same text). -#}
{% macro null_safe_key(alias, keys) -%}
concat_ws('|'{% for key in keys %}, coalesce('v' || length({{ alias }}.{{ key }}::text) || ':' || {{ alias }}.{{ key }}::text, 'n'){% endfor %})
{%- endmacro %}
