-- Extraction points stored per model, with widths and the activation table holding them.
SELECT model, modality, point, layer, width, vector_dtype, random_init, table_name
FROM points
ORDER BY model, modality, layer, point
