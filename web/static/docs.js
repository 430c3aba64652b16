/*
 * ML Cabinet: renders the OpenAPI document named by #api-docs[data-spec-url]
 * as a readable reference. No libraries. Text from the spec is only ever
 * inserted with textContent, never parsed as HTML.
 */
(function () {
  'use strict';

  var METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options', 'trace'];
  var MAX_DEPTH = 8;

  var root = document.getElementById('api-docs');
  if (!root) {
    return;
  }
  var specUrl = root.getAttribute('data-spec-url') || '/api/openapi.json';
  var spec = null;

  /* ---------- labels in the page's language ---------- */

  // English defaults; docs.html passes the page's language in
  // <script type="application/json" id="docs-labels"> (data, not code: the CSP stays strict).
  // "{name}"-style holes are filled by label(); each label is a whole sentence or phrase.
  var LABELS = {
    constraints: 'Constraints',
    anyJson: 'Any JSON value.',
    recursive: '↻ {name} (recursive, shown above)',
    unresolved: 'Unresolved reference {ref}',
    tooDeep: '… (nested too deeply to show)',
    exactlyOne: 'Exactly one of:',
    anyOf: 'Any of:',
    required: 'required',
    optional: 'optional',
    example: 'Example',
    exampleRequest: 'Example request',
    exampleResponse: 'Example response',
    name: 'Name',
    location: 'In',
    type: 'Type',
    details: 'Details',
    bearer: 'Bearer token',
    deprecated: 'deprecated',
    permalink: 'Link to this endpoint',
    parameters: 'Parameters',
    requestBody: 'Request body',
    responses: 'Responses',
    responseBody: 'Response body',
    expandAll: 'Expand all',
    collapseAll: 'Collapse all',
    noPaths: 'The specification has no paths.',
    noEndpoints: 'The specification lists no endpoints.',
    sections: 'API sections',
    loadFailed: 'Could not load the API specification.',
    openRaw: 'Open the raw specification',
    reload: 'Or reload the page to try again.',
    loading: 'Loading the API specification…',
    serverAnswered: 'The server answered {status}.'
  };

  (function readLabels() {
    var source = document.getElementById('docs-labels');
    if (!source) {
      return;
    }
    try {
      var given = JSON.parse(source.textContent || '{}');
      Object.keys(LABELS).forEach(function (key) {
        if (typeof given[key] === 'string' && given[key]) {
          LABELS[key] = given[key];
        }
      });
    } catch (err) {
      // Unreadable labels: the reference still works, in English.
    }
  }());

  function label(key, values) {
    var text = LABELS[key];
    Object.keys(values || {}).forEach(function (name) {
      text = text.split('{' + name + '}').join(String(values[name]));
    });
    return text;
  }

  /* ---------- tiny DOM helpers ---------- */

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function append(parent) {
    for (var i = 1; i < arguments.length; i += 1) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) {
        continue;
      }
      parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return parent;
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  function isObject(value) {
    return value !== null && typeof value === 'object' && !Array.isArray(value);
  }

  function slug(text) {
    return String(text).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  }

  function showJson(value) {
    try {
      return JSON.stringify(value, null, 2);
    } catch (err) {
      return String(value);
    }
  }

  /* ---------- $ref resolution ---------- */

  function refName(ref) {
    var parts = String(ref).split('/');
    return parts[parts.length - 1];
  }

  // Resolves a local JSON pointer such as "#/components/schemas/Login".
  function lookup(ref) {
    if (typeof ref !== 'string' || ref.charAt(0) !== '#') {
      return null;
    }
    var node = spec;
    var parts = ref.slice(1).split('/');
    for (var i = 0; i < parts.length; i += 1) {
      if (parts[i] === '') {
        continue;
      }
      var key = decodeURIComponent(parts[i]).replace(/~1/g, '/').replace(/~0/g, '~');
      if (!isObject(node) && !Array.isArray(node)) {
        return null;
      }
      node = node[key];
      if (node === undefined) {
        return null;
      }
    }
    return node;
  }

  // Follows a chain of $refs (parameters, responses, request bodies, schemas).
  function deref(obj) {
    var guard = 0;
    while (isObject(obj) && typeof obj.$ref === 'string' && guard < 20) {
      var target = lookup(obj.$ref);
      if (!target) {
        return obj;
      }
      obj = target;
      guard += 1;
    }
    return obj;
  }

  /* ---------- schema helpers ---------- */

  function typeOf(schema) {
    if (!isObject(schema)) {
      return '';
    }
    if (Array.isArray(schema.type)) {
      return schema.type.join(' | ');
    }
    if (schema.type) {
      return schema.type;
    }
    if (schema.properties || schema.additionalProperties) {
      return 'object';
    }
    if (schema.items) {
      return 'array';
    }
    return '';
  }

  function typeLabel(schema, depth) {
    depth = depth || 0;
    if (!isObject(schema)) {
      return 'any';
    }
    if (schema.$ref) {
      return refName(schema.$ref);
    }
    if (depth > MAX_DEPTH) {
      return '…';
    }
    var variants = schema.oneOf || schema.anyOf;
    if (Array.isArray(variants)) {
      return variants.map(function (s) { return typeLabel(s, depth + 1); }).join(' | ');
    }
    if (Array.isArray(schema.allOf) && schema.allOf.length === 1) {
      return typeLabel(schema.allOf[0], depth + 1);
    }
    var type = typeOf(schema);
    if (type === 'array' || (Array.isArray(schema.type) && schema.type.indexOf('array') !== -1)) {
      var inner = 'array of ' + typeLabel(schema.items, depth + 1);
      return Array.isArray(schema.type) ? schema.type.join(' | ').replace('array', inner) : inner;
    }
    if (type === 'object' && !schema.properties && isObject(schema.additionalProperties)) {
      return 'map of string → ' + typeLabel(schema.additionalProperties, depth + 1);
    }
    var label = type || 'any';
    if (schema.format) {
      label += ' (' + schema.format + ')';
    }
    if (schema.nullable) {
      label += ' | null';
    }
    return label;
  }

  function constraintList(schema) {
    var out = [];
    if (!isObject(schema)) {
      return out;
    }
    function add(label, value) {
      out.push(label + (value === undefined ? '' : ' ' + value));
    }
    if (schema.minimum !== undefined) {
      add(schema.exclusiveMinimum === true ? '>' : '≥', schema.minimum);
    }
    if (typeof schema.exclusiveMinimum === 'number') {
      add('>', schema.exclusiveMinimum);
    }
    if (schema.maximum !== undefined) {
      add(schema.exclusiveMaximum === true ? '<' : '≤', schema.maximum);
    }
    if (typeof schema.exclusiveMaximum === 'number') {
      add('<', schema.exclusiveMaximum);
    }
    if (schema.multipleOf !== undefined) {
      add('multiple of', schema.multipleOf);
    }
    if (schema.minLength !== undefined) {
      add('minLength', schema.minLength);
    }
    if (schema.maxLength !== undefined) {
      add('maxLength', schema.maxLength);
    }
    if (schema.pattern !== undefined) {
      add('pattern', schema.pattern);
    }
    if (schema.minItems !== undefined) {
      add('minItems', schema.minItems);
    }
    if (schema.maxItems !== undefined) {
      add('maxItems', schema.maxItems);
    }
    if (schema.uniqueItems) {
      add('unique items');
    }
    if (schema.minProperties !== undefined) {
      add('minProperties', schema.minProperties);
    }
    if (schema.maxProperties !== undefined) {
      add('maxProperties', schema.maxProperties);
    }
    if (Array.isArray(schema.enum)) {
      add('one of', schema.enum.map(function (v) { return JSON.stringify(v); }).join(', '));
    }
    if (schema.const !== undefined) {
      add('always', JSON.stringify(schema.const));
    }
    if (schema.default !== undefined) {
      add('default', JSON.stringify(schema.default));
    }
    if (schema.readOnly) {
      add('read-only');
    }
    if (schema.writeOnly) {
      add('write-only');
    }
    if (schema.deprecated) {
      add('deprecated');
    }
    return out;
  }

  function constraintsNode(schema) {
    var items = constraintList(schema);
    if (!items.length) {
      return null;
    }
    var list = el('ul', 'constraints');
    list.setAttribute('aria-label', label('constraints'));
    items.forEach(function (text) {
      append(list, el('li', 'constraint', text));
    });
    return list;
  }

  // Merges allOf members into one object schema so their properties list together.
  function flatten(schema, seen) {
    schema = deref(schema);
    if (!isObject(schema) || !Array.isArray(schema.allOf)) {
      return schema;
    }
    var merged = { type: 'object', properties: {}, required: [] };
    Object.keys(schema).forEach(function (key) {
      if (key !== 'allOf' && key !== 'properties' && key !== 'required') {
        merged[key] = schema[key];
      }
    });
    schema.allOf.concat([{ properties: schema.properties, required: schema.required }]).forEach(function (part) {
      if (isObject(part) && part.$ref && seen.indexOf(part.$ref) !== -1) {
        return;
      }
      var resolved = flatten(part, seen);
      if (!isObject(resolved)) {
        return;
      }
      Object.keys(resolved.properties || {}).forEach(function (name) {
        merged.properties[name] = resolved.properties[name];
      });
      (resolved.required || []).forEach(function (name) {
        if (merged.required.indexOf(name) === -1) {
          merged.required.push(name);
        }
      });
      if (!merged.description && resolved.description) {
        merged.description = resolved.description;
      }
    });
    return merged;
  }

  // Renders a schema as a nested property list. `seen` holds the $refs on the
  // current path so self-referencing schemas stop instead of recursing forever.
  function renderSchema(schema, depth, seen) {
    depth = depth || 0;
    seen = seen || [];
    var box = el('div', 'schema');

    if (!isObject(schema)) {
      append(box, el('p', 'schema-note', label('anyJson')));
      return box;
    }
    if (schema.$ref) {
      if (seen.indexOf(schema.$ref) !== -1) {
        append(box, el('p', 'schema-note', label('recursive', { name: refName(schema.$ref) })));
        return box;
      }
      seen = seen.concat([schema.$ref]);
      var target = lookup(schema.$ref);
      if (!target) {
        append(box, el('p', 'schema-note', label('unresolved', { ref: schema.$ref })));
        return box;
      }
      append(box, el('p', 'schema-name', refName(schema.$ref)));
      schema = target;
    }
    if (depth > MAX_DEPTH) {
      append(box, el('p', 'schema-note', label('tooDeep')));
      return box;
    }

    schema = flatten(schema, seen);
    if (schema.description && depth === 0) {
      append(box, el('p', 'schema-desc', schema.description));
    }

    var variants = schema.oneOf || schema.anyOf;
    if (Array.isArray(variants)) {
      append(box, el('p', 'schema-note', label(schema.oneOf ? 'exactlyOne' : 'anyOf')));
      var vlist = el('ol', 'schema-variants');
      variants.forEach(function (variant) {
        append(vlist, append(el('li'), renderSchema(variant, depth + 1, seen)));
      });
      append(box, vlist);
      return box;
    }

    var type = typeOf(schema);
    if (type === 'array' || (Array.isArray(schema.type) && schema.type.indexOf('array') !== -1)) {
      append(box, el('p', 'schema-note', typeLabel(schema)));
      append(box, constraintsNode(schema));
      var items = deref(schema.items);
      if (isObject(items) && (items.properties || items.allOf || items.oneOf || items.anyOf)) {
        append(box, renderSchema(schema.items, depth + 1, seen));
      }
      return box;
    }

    if (schema.properties && Object.keys(schema.properties).length) {
      var required = Array.isArray(schema.required) ? schema.required : [];
      var list = el('ul', 'props');
      Object.keys(schema.properties).forEach(function (name) {
        append(list, renderProperty(name, schema.properties[name], required.indexOf(name) !== -1, depth, seen));
      });
      append(box, list);
    } else if (type === 'object' || isObject(schema.additionalProperties)) {
      var note = 'object';
      if (isObject(schema.additionalProperties)) {
        note = 'map of string → ' + typeLabel(schema.additionalProperties);
      }
      append(box, el('p', 'schema-note', note));
      append(box, constraintsNode(schema));
    } else {
      append(box, el('p', 'schema-note', typeLabel(schema)));
      append(box, constraintsNode(schema));
    }
    return box;
  }

  function renderProperty(name, propSchema, isRequired, depth, seen) {
    var item = el('li', 'prop');
    var head = el('div', 'prop-head');
    append(head, el('code', 'prop-name', name), el('span', 'prop-type', typeLabel(propSchema)));
    append(head, isRequired ? el('span', 'prop-req', label('required')) : el('span', 'prop-opt', label('optional')));
    append(item, head);

    var resolved = deref(propSchema);
    var description = (isObject(propSchema) && propSchema.description) || (isObject(resolved) && resolved.description);
    if (description) {
      append(item, el('p', 'prop-desc', description));
    }
    // Constraints may sit on the property itself or on the schema it points to.
    append(item, constraintsNode(isObject(propSchema) && !propSchema.$ref ? propSchema : resolved));

    // For arrays, describe the item schema directly ("array of X" is already in the type).
    var target = propSchema;
    if (isObject(resolved) && typeOf(resolved) === 'array' && isObject(resolved.items)) {
      target = resolved.items;
    }
    var nested = deref(target);
    if (isObject(nested) && (nested.properties || nested.allOf || nested.oneOf || nested.anyOf)) {
      var refStr = isObject(target) && target.$ref;
      if (refStr && seen.indexOf(refStr) !== -1) {
        append(item, el('p', 'schema-note', label('recursive', { name: refName(refStr) })));
      } else {
        append(item, renderSchema(target, depth + 1, seen));
      }
    }
    return item;
  }

  // Builds a plausible example value from a schema (used when the spec has none).
  function sampleFor(schema, depth, seen) {
    depth = depth || 0;
    seen = seen || [];
    if (!isObject(schema) || depth > 6) {
      return null;
    }
    if (schema.$ref) {
      if (seen.indexOf(schema.$ref) !== -1) {
        return {};
      }
      seen = seen.concat([schema.$ref]);
    }
    schema = flatten(schema, seen);
    if (!isObject(schema)) {
      return null;
    }
    if (schema.example !== undefined) {
      return schema.example;
    }
    if (Array.isArray(schema.examples) && schema.examples.length) {
      return schema.examples[0];
    }
    if (schema.default !== undefined) {
      return schema.default;
    }
    if (Array.isArray(schema.enum) && schema.enum.length) {
      return schema.enum[0];
    }
    var variants = schema.oneOf || schema.anyOf;
    if (Array.isArray(variants) && variants.length) {
      return sampleFor(variants[0], depth + 1, seen);
    }
    var type = Array.isArray(schema.type) ? schema.type.filter(function (t) { return t !== 'null'; })[0] : typeOf(schema);
    switch (type) {
      case 'object': {
        var out = {};
        Object.keys(schema.properties || {}).forEach(function (name) {
          var prop = deref(schema.properties[name]);
          if (isObject(prop) && prop.readOnly) {
            return;
          }
          out[name] = sampleFor(schema.properties[name], depth + 1, seen);
        });
        return out;
      }
      case 'array': {
        var item = sampleFor(schema.items, depth + 1, seen);
        return item === null ? [] : [item];
      }
      case 'integer':
        return schema.minimum !== undefined ? schema.minimum : 0;
      case 'number':
        return schema.minimum !== undefined ? schema.minimum : 1.5;
      case 'boolean':
        return true;
      case 'string':
        if (schema.format === 'date-time') {
          return '2024-01-01T12:00:00+00:00';
        }
        if (schema.format === 'uuid') {
          return '3fa85f64-5717-4562-b3fc-2c963f66afa6';
        }
        return 'string';
      default:
        return null;
    }
  }

  /* ---------- operation rendering ---------- */

  function contentBlock(content, heading) {
    var wrap = el('div', 'content-block');
    Object.keys(content).forEach(function (mediaType) {
      var media = content[mediaType] || {};
      var part = el('div', 'media');
      append(part, el('p', 'media-type', mediaType));
      if (media.schema) {
        append(part, renderSchema(media.schema));
        var example = media.example;
        if (example === undefined && isObject(media.examples)) {
          var first = media.examples[Object.keys(media.examples)[0]];
          example = isObject(deref(first)) ? deref(first).value : undefined;
        }
        if (example === undefined && mediaType.indexOf('json') !== -1) {
          example = sampleFor(media.schema);
        }
        if (example !== undefined && example !== null) {
          var ex = el('details', 'example');
          append(ex, el('summary', null, label(heading === 'request' ? 'exampleRequest' : heading === 'response' ? 'exampleResponse' : 'example')));
          append(ex, append(el('pre', 'code-block'), el('code', null, showJson(example))));
          append(part, ex);
        }
      }
      append(wrap, part);
    });
    return wrap;
  }

  function paramsTable(params) {
    var wrap = el('div', 'table-wrap');
    var table = el('table', 'table table-compact');
    var thead = el('thead');
    var headRow = el('tr');
    ['name', 'location', 'type', 'details'].forEach(function (key) {
      var th = el('th', null, label(key));
      th.setAttribute('scope', 'col');
      append(headRow, th);
    });
    append(thead, headRow);
    var tbody = el('tbody');
    params.forEach(function (param) {
      var row = el('tr');
      var nameCell = el('th');
      nameCell.setAttribute('scope', 'row');
      append(nameCell, el('code', 'prop-name', param.name));
      if (param.required) {
        append(nameCell, ' ', el('span', 'prop-req', label('required')));
      }
      var schema = param.schema || param;
      var details = el('td');
      if (param.description) {
        append(details, el('p', 'prop-desc', param.description));
      }
      append(details, constraintsNode(deref(schema)));
      append(row, nameCell, el('td', null, param['in']), el('td', 'prop-type', typeLabel(schema)), details);
      append(tbody, row);
    });
    append(table, thead, tbody);
    return append(wrap, table);
  }

  function statusClass(code) {
    var first = String(code).charAt(0);
    if (first === '2') {
      return 'status-2xx';
    }
    if (first === '3') {
      return 'status-3xx';
    }
    if (first === '4') {
      return 'status-4xx';
    }
    if (first === '5') {
      return 'status-5xx';
    }
    return 'status-other';
  }

  function requiresAuth(op) {
    var security = op.security !== undefined ? op.security : spec.security;
    if (!Array.isArray(security) || !security.length) {
      return false;
    }
    // An empty requirement object ({}) means "anonymous allowed".
    return !security.some(function (req) { return isObject(req) && Object.keys(req).length === 0; });
  }

  function renderOperation(path, method, op, pathParams) {
    var id = 'op-' + method + '-' + slug(path);
    var details = el('details', 'op op-' + method);
    details.id = id;

    var summary = el('summary', 'op-summary');
    append(summary,
      el('span', 'method method-' + method, method.toUpperCase()),
      el('code', 'op-path', path),
      op.summary ? el('span', 'op-title', op.summary) : null,
      requiresAuth(op) ? el('span', 'op-lock', label('bearer')) : null,
      op.deprecated ? el('span', 'op-deprecated', label('deprecated')) : null);
    append(details, summary);

    var body = el('div', 'op-body');
    var permalink = el('a', 'op-permalink', label('permalink'));
    permalink.href = '#' + id;
    append(body, permalink);

    if (op.description && op.description !== op.summary) {
      append(body, el('p', 'op-desc', op.description));
    }

    // Path-level parameters apply unless the operation redefines them.
    var params = [];
    var seenParams = {};
    (op.parameters || []).concat(pathParams || []).forEach(function (raw) {
      var param = deref(raw);
      if (!isObject(param)) {
        return;
      }
      var key = param['in'] + ':' + param.name;
      if (!seenParams[key]) {
        seenParams[key] = true;
        params.push(param);
      }
    });
    var bodyParam = null;
    params = params.filter(function (p) {
      if (p['in'] === 'body') { // Swagger 2 style
        bodyParam = p;
        return false;
      }
      return true;
    });
    if (params.length) {
      append(body, el('h4', 'op-section', label('parameters')), paramsTable(params));
    }

    var requestBody = deref(op.requestBody);
    if (isObject(requestBody) && isObject(requestBody.content)) {
      var rbTitle = el('h4', 'op-section', label('requestBody'));
      if (requestBody.required) {
        append(rbTitle, ' ', el('span', 'prop-req', label('required')));
      }
      append(body, rbTitle);
      if (requestBody.description) {
        append(body, el('p', 'op-desc', requestBody.description));
      }
      append(body, contentBlock(requestBody.content, 'request'));
    } else if (bodyParam && bodyParam.schema) {
      append(body, el('h4', 'op-section', label('requestBody')));
      append(body, contentBlock({ 'application/json': { schema: bodyParam.schema } }, 'request'));
    }

    var responses = isObject(op.responses) ? op.responses : {};
    var codes = Object.keys(responses).sort();
    if (codes.length) {
      append(body, el('h4', 'op-section', label('responses')));
      var list = el('ul', 'responses');
      codes.forEach(function (code) {
        var response = deref(responses[code]) || {};
        var item = el('li', 'response');
        var head = el('div', 'response-head');
        append(head, el('span', 'status-code ' + statusClass(code), code),
          el('span', 'response-desc', response.description || ''));
        append(item, head);
        var content = null;
        if (isObject(response.content) && Object.keys(response.content).length) {
          content = contentBlock(response.content, 'response');
        } else if (response.schema) { // Swagger 2 style
          content = contentBlock({ 'application/json': { schema: response.schema } }, 'response');
        }
        if (content && /^[2]/.test(code)) {
          append(item, content);
        } else if (content) {
          // Error bodies repeat the same problem shape: keep them folded.
          var fold = el('details', 'example');
          append(fold, el('summary', null, label('responseBody')), content);
          append(item, fold);
        }
        append(list, item);
      });
      append(body, list);
    }

    append(details, body);
    return details;
  }

  /* ---------- page assembly ---------- */

  function collectGroups() {
    var groups = [];
    var byName = {};
    function group(name) {
      if (!byName[name]) {
        byName[name] = { name: name, description: '', ops: [] };
        groups.push(byName[name]);
      }
      return byName[name];
    }
    (Array.isArray(spec.tags) ? spec.tags : []).forEach(function (tag) {
      if (isObject(tag) && tag.name) {
        group(tag.name).description = tag.description || '';
      }
    });
    var paths = isObject(spec.paths) ? spec.paths : {};
    Object.keys(paths).forEach(function (path) {
      var item = deref(paths[path]);
      if (!isObject(item)) {
        return;
      }
      METHODS.forEach(function (method) {
        var op = item[method];
        if (!isObject(op)) {
          return;
        }
        var tag = Array.isArray(op.tags) && op.tags.length ? op.tags[0] : 'Other';
        group(tag).ops.push({ path: path, method: method, op: op, pathParams: item.parameters });
      });
    });
    return groups.filter(function (g) { return g.ops.length; });
  }

  function toolbar(container) {
    var bar = el('div', 'docs-toolbar');
    function button(text, open) {
      var b = el('button', 'btn btn-secondary btn-sm', text);
      b.type = 'button';
      b.addEventListener('click', function () {
        var all = container.querySelectorAll('details.op');
        for (var i = 0; i < all.length; i += 1) {
          all[i].open = open;
        }
      });
      return b;
    }
    return append(bar, button(label('expandAll'), true), button(label('collapseAll'), false));
  }

  function render(data) {
    spec = data;
    clear(root);
    if (!isObject(spec) || !isObject(spec.paths)) {
      throw new Error(label('noPaths'));
    }

    var info = isObject(spec.info) ? spec.info : {};
    if (info.title || info.version || info.description) {
      var head = el('div', 'docs-info');
      var title = el('p', 'docs-info-title', info.title || 'API');
      if (info.version) {
        append(title, ' ', el('span', 'docs-version', 'v' + info.version));
      }
      append(head, title);
      if (info.description) {
        append(head, el('p', 'op-desc', info.description));
      }
      append(root, head);
    }

    var groups = collectGroups();
    if (!groups.length) {
      append(root, el('p', 'empty-state card', label('noEndpoints')));
      return;
    }

    var content = el('div', 'docs-groups');
    if (groups.length > 1) {
      var toc = el('nav', 'docs-toc');
      toc.setAttribute('aria-label', label('sections'));
      var tocList = el('ul');
      groups.forEach(function (g) {
        var link = el('a', null, g.name + ' (' + g.ops.length + ')');
        link.href = '#tag-' + slug(g.name);
        append(tocList, append(el('li'), link));
      });
      append(root, append(toc, tocList));
    }
    append(root, toolbar(content));

    groups.forEach(function (g) {
      var section = el('section', 'tag-group');
      var headingId = 'tag-' + slug(g.name);
      section.setAttribute('aria-labelledby', headingId);
      var heading = el('h3', 'tag-title', g.name);
      heading.id = headingId;
      append(section, heading);
      if (g.description) {
        append(section, el('p', 'tag-desc', g.description));
      }
      g.ops.forEach(function (entry) {
        append(section, renderOperation(entry.path, entry.method, entry.op, entry.pathParams));
      });
      append(content, section);
    });
    append(root, content);
    openFromHash();
  }

  function openFromHash() {
    if (!location.hash || location.hash.length < 2) {
      return;
    }
    var target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target && target.tagName === 'DETAILS') {
      target.open = true;
      target.scrollIntoView();
    }
  }

  function showError(err) {
    clear(root);
    var box = el('div', 'alert alert-error');
    box.setAttribute('role', 'alert');
    append(box, el('strong', null, label('loadFailed')));
    if (err && err.message) {
      append(box, el('p', 'alert-detail', err.message));
    }
    var link = el('a', null, label('openRaw'));
    link.href = specUrl;
    append(box, append(el('p', 'alert-detail'), link), el('p', 'alert-detail', label('reload')));
    append(root, box);
  }

  var loading = el('p', 'docs-loading', label('loading'));
  loading.setAttribute('role', 'status');
  append(root, loading);
  root.setAttribute('aria-busy', 'true');

  window.addEventListener('hashchange', openFromHash);

  fetch(specUrl, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
    .then(function (response) {
      if (!response.ok) {
        throw new Error(label('serverAnswered', { status: (response.status + ' ' + (response.statusText || '')).trim() }));
      }
      return response.json();
    })
    .then(render)
    .catch(showError)
    .then(function () {
      root.removeAttribute('aria-busy');
    });
}());
